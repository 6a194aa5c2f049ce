-- A VM's volume keys name the host the volume lives on (`vol:<host>:<pool>/<name>`), so a
-- volume left on a host the VM no longer runs on stays on record until it is wiped. Keys
-- written before name none: those of a VM on a host are on that host. A VM on no host keeps
-- its old keys (registry/vm-volumes.ts counts them as on its host, should it get one).
UPDATE node_keys k SET key = 'vol:' || h.name || ':' || substr(k.key, 5)
FROM nodes v JOIN nodes h ON h.id = v.parent_id AND h.type = 'host'
WHERE k.node_id = v.id AND v.type = 'vm' AND k.key LIKE 'vol:%' AND k.key NOT LIKE 'vol:%:%';
