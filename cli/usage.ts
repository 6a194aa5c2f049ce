/** The command line was wrong: exits 2 with what was wrong, before any call is made. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `usage: vagoth <command>

  hosts list
  hosts get <name>
  hosts register <name> <uri> [--vcpus N] [--driver libvirt|geats] [--cpu-ratio R]
                 [--memory-ratio R] [--disk GiB] [--tag k=v]...
      uri: a libvirt URI, geats:///path/to/agent or geats+ssh://user@host[:port]/path/to/agent;
      a geats host reports no CPU count, so it needs --vcpus
  hosts maintenance|activate|remove <name>
      maintenance: no new placements, and its VMs migrate away (prints what moved and what stayed)
  hosts evacuate <name> --fenced
      restarts a dead host's VMs elsewhere on fresh volumes; --fenced confirms the host is off
  networks list
  networks create <name> <cidr> [--gateway A.B.C.D] [--reserve FIRST-LAST]... [--dns A.B.C.D]...
  images list
  images get <name>
  images create <name> <source> [--format raw|qcow2] [--sha256 HEX]
                [--kernel IMAGE [--initrd IMAGE] [--cmdline LINE]] [--wait]
      source: a file under $VAGOTH_IMAGE_DIRS or a URL under $VAGOTH_IMAGE_URLS; the import
      checks the digest (if given) and the format (qcow2 or raw) and reports bytes read
  images delete <name>
  vms list
  vms get <name>
  vms wipes <name>
      how its volumes were wiped and checked (a decommissioned VM by its last name)
  vms create <name> --vcpus N --memory MiB [--disk GiB] [--nic network[,ip=A.B.C.D][,mac=M]]...
             [--image NAME] [--extra-disk GiB]... [--ssh-key-file FILE]... [--user-data-file FILE]
             [--tag k=v]... [PLACEMENT] [--keep-on-failure] [--wait]
  vms start|stop|reboot|reprovision|decommission <name> [--wait]
  vms shutdown <name> [--timeout MS] [--force] [--wait]
  vms migrate <name> [--to HOST] [--cold] [--wait]
  placement explain --vcpus N --memory MiB [--disk GiB] [PLACEMENT]
  operations get <id> [<run-id>] [--update ID]
  operations retry <vm-name> [--wait]
      runs the VM's last operation again, with its input, if it failed
  tokens list [--all]
  tokens create <name> --role admin|operator|reader [--expires SECONDS]
      prints the token once: it is stored only as a hash
  tokens revoke <id>

The cloud (its API at $VAGOTH_CLOUD_URL, default /cloud/trpc beside the cluster API):
  clusters list
  clusters get <name>
  clusters register <name> --driver local|vagoth [--url URL --token-file FILE] [--region R]
                    [--tag k=v]...
  clusters drain <name> [--undrain]
  clusters remove <name>
  clusters grant-network|revoke-network <cluster> <network> (--project P | --public)
  clusters publish-image|unpublish-image <cluster> <image> (--project P | --public)
      what a project's instances may attach to and boot from; --public: every project
  users list
  users get|create|disable <name>        create: [--admin]
  users me
  projects list
  projects get|create|delete <project>
  projects add-member <project> <user> --role member|reader
  projects remove-member <project> <user>
  projects events [--project P] [--limit N] [--before EVENT-ID]
  projects networks|images [--project P]
      the clusters' networks and images granted to the project (or public)
  quotas get [--project P]
  quotas set [--project P] [--instances N] [--vcpus N] [--memory MiB] [--disk GiB] [--ips N]
      a limit not given stays as it is; none removes it (--vcpus none)
  instances list [--project P] [--cluster C] [--limit N] [--after NAME]
  instances get <name> [--project P]
  instances operations <name> [--project P] [--limit N]
      what was asked of it and by whom, newest first, with each operation's UI link
  instances create <name> [--project P] --vcpus N --memory MiB --image IMAGE [--disk GiB]
                   [--nic network[,ip=A.B.C.D]]... [--cluster C | --region R] [--require k=v]...
                   [--policy spread|pack] [--ssh-key-file FILE]... [--user-data-file FILE] [--wait]
  instances start|stop|shutdown|reboot|reprovision <name> [--project P] [--wait]
  instances delete <name> [--project P] [--wait]
      the instance is gone from the project at once; its VM is decommissioned in its cluster
      (--wait: until that ends)
  cloud-tokens list [--user U]
  cloud-tokens create <name> [--user U] [--project P] [--read-only] [--expires SECONDS]
                      [--token-file FILE]
      prints the token once, or writes it to a new FILE (mode 0600) and prints it nowhere;
      --project narrows the token to that project (it is not taken from $VAGOTH_PROJECT)
  cloud-tokens revoke <id>

The service layer (its API at /services/trpc beside the cloud's; the caller's cloud token):
  services list [--project P]
  services show|events <name> [--project P]             events: [--limit N]
  services create <name> [--project P] (--image IMAGE --vcpus N --memory MiB | --file SPEC)
                  [--disk GiB] [--network NETWORK]... [--user-data-file FILE]
                  [--ssh-key-file FILE]... [--replicas N] [--spread host|cluster]
                  [--max-unavailable N] [--max-surge N] [--every SECONDS] [SERVICE] [WAIT]
      SPEC: a JSON file (- for standard input) of services.create's input; options win over it
  services scale <name> <replicas> [--project P] [WAIT]
  services update <name> [--project P] [template options] [--replicas N] [--max-unavailable N]
                  [--max-surge N] [--every SECONDS] [SERVICE] [--file SPEC] [WAIT]
      template options change those fields of its template; one with user-data or SSH keys
      needs them given again (the API never shows them back)
  SERVICE: [--placement replicas=N[,cloud=NAME][,cluster=NAME|,region=NAME]]...
           [--health tcp:PORT|http:PORT[/PATH]] [--unhealthy-after N] [--grace SECONDS]
           [--cloud-token NAME=PROJECT:FILE]...
      --placement: where N of its replicas go (they add up to --replicas, which may be left
      out); --health: a check of each instance, failed --unhealthy-after times in a row (3) and
      it is replaced; --grace: how long an instance whose cluster does not answer waits (120);
      --cloud-token: the caller's token in another cloud (read from FILE) and its project there;
      on update, --placement none lets its cloud place them again, --health none drops the check
  services pause <name> [--project P]
  services resume|delete <name> [--project P] [WAIT]
  WAIT: --wait [--wait-timeout SECONDS]: until the service is settled with as many running as
      it asks (delete: until it is gone), its count of running/desired on standard error;
      gives up after 600 s unless told

PLACEMENT: [--host H] [--require k=v]... [--anti-affinity G]... [--affinity G]... [--policy spread|pack]

The API is at $VAGOTH_API_URL (default http://127.0.0.1:7780/trpc). Every call carries the
token in $VAGOTH_TOKEN, else the admin token vagoth wrote to $VAGOTH_DATA_DIR/admin-token.

The cloud's verbs print tables; --json prints the API's answer as JSON. --project defaults to
$VAGOTH_PROJECT. They call $VAGOTH_CLOUD_URL with $VAGOTH_TOKEN, else the cloud admin token
vagoth wrote to $VAGOTH_DATA_DIR/cloud-admin-token. A token is read from a file
(--token-file), never given on the command line.`;
