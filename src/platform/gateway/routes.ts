import type { Role } from "../runtime/action";

/**
 * An HTTP route a service publishes in its contract (and in its settings, where the gateway finds
 * it through the registry). Path, query and body are merged into the action's params; path wins.
 */
export interface RouteDef {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  action: string;
  /** public: no token needed; user: any signed-in user; a role list: any of them (admin always passes). */
  auth: "public" | "user" | Role[];
  /** Status of a successful answer (200 unless set). */
  status?: number;
}
