/**
 * The cloud's one authorisation rule, pure so that a test can try every caller on every
 * procedure: a function of (caller, the procedure's rule, its target).
 *
 * - `admin` users may do anything in the whole cloud (clusters, users, projects, quotas, every
 *   project's instances), with a token not narrowed to one project.
 * - In a project, a `member` creates and operates its instances and reads the rest; a `reader`
 *   only reads.
 * - A project the caller cannot see is answered NOT_FOUND, as if it did not exist, so names do
 *   not leak; one it sees, without the role needed, FORBIDDEN naming that role.
 * - A read-only token (or one narrowed to a project) is never more than its user.
 */

export type ProjectRole = 'member' | 'reader';
export const PROJECT_ROLES = ['member', 'reader'] as const satisfies readonly ProjectRole[];

/** Who is calling: a user, through one of its tokens. */
export interface Caller {
  userId: string;
  user: string;
  admin: boolean;
  tokenId: string;
  /** The project (id) the token is narrowed to; null: every project of its user. */
  project: string | null;
  readOnly: boolean;
  /** When the token stops working; null: never (until revoked). */
  expiresAt: Date | null;
  /** The user's role in each project it belongs to, by project id. */
  roles: Readonly<Record<string, ProjectRole>>;
}

/**
 * What a procedure needs:
 * - `admin`: the cloud's admin role;
 * - `user`: any caller (what it acts on is its own: its projects, its tokens, itself), a write
 *   or not; a target user other than the caller needs admin;
 * - `project`: a role in the project the input names (`reader` to read, `member` to act).
 */
export type Rule =
  | { kind: 'admin'; write: boolean }
  | { kind: 'user'; write: boolean }
  | { kind: 'project'; needs: ProjectRole };

/** What the input names, as the API found it. */
export interface Target {
  /** For `project` rules: the project's id and name; null when no project has that name. */
  project?: { id: string; name: string } | { id: null; name: string };
  /** For `user` rules: the user acted on, when not the caller itself. */
  userId?: string;
}

export type Decision =
  { allowed: true } | { allowed: false; code: 'FORBIDDEN' | 'NOT_FOUND'; reason: string };

const allow: Decision = { allowed: true };
const forbid = (reason: string): Decision => ({ allowed: false, code: 'FORBIDDEN', reason });

/** Whether the caller sees a project at all (its name included). */
export function seesProject(caller: Caller, projectId: string): boolean {
  if (caller.project !== null && caller.project !== projectId) return false;
  return caller.admin || caller.roles[projectId] !== undefined;
}

/** The caller's power in a project it sees: what it may do there. */
function roleIn(caller: Caller, projectId: string): ProjectRole | 'admin' | null {
  if (!seesProject(caller, projectId)) return null;
  if (caller.readOnly) return 'reader';
  return caller.admin ? 'admin' : (caller.roles[projectId] ?? null);
}

export function authorizeCloud(caller: Caller, path: string, rule: Rule, target: Target): Decision {
  switch (rule.kind) {
    case 'admin':
      if (!caller.admin || caller.project !== null) {
        return forbid(`${path} needs the cloud's admin role`);
      }
      if (rule.write && caller.readOnly)
        return forbid(`${path} changes the cloud: a read-only token may not`);
      return allow;
    case 'user':
      if (target.userId !== undefined && target.userId !== caller.userId) {
        if (!caller.admin || caller.project !== null) {
          return forbid(`${path} for another user needs the cloud's admin role`);
        }
      }
      if (rule.write && caller.readOnly)
        return forbid(`${path} changes the cloud: a read-only token may not`);
      return allow;
    case 'project': {
      const project = target.project;
      if (!project) return forbid(`${path} names no project`);
      const role = project.id === null ? null : roleIn(caller, project.id);
      if (role === null) {
        return {
          allowed: false,
          code: 'NOT_FOUND',
          reason: `project ${JSON.stringify(project.name)} not found`,
        };
      }
      if (rule.needs === 'member' && role === 'reader') {
        return forbid(
          caller.readOnly
            ? `${path} changes project ${project.name}: a read-only token may not`
            : `${path} needs the member role in project ${project.name}`,
        );
      }
      return allow;
    }
  }
}
