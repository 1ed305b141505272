import { z } from "zod";
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
  /**
   * A tenant permission (`resource:action`) the gateway checks before the call, through the action
   * named by the gateway's `permissionAction`, for the tenant in the `tid` (or `tenantId`) param.
   */
  permission?: string;
  /** Pass the exact request body and headers in meta (signed webhooks verify them). */
  rawBody?: boolean;
  /** JSON Schema of the action's params, for the OpenAPI document; filled from the contract. */
  input?: Record<string, unknown>;
}

/** Attaches each route's params schema, taken from the contract entry named like the action. */
export function routesWithSchemas(routes: RouteDef[], contract: Record<string, z.ZodType>): RouteDef[] {
  return routes.map((route) => {
    const schema = contract[route.action.slice(route.action.indexOf(".") + 1)];
    return schema ? { ...route, input: z.toJSONSchema(schema, { io: "input", unrepresentable: "any" }) as Record<string, unknown> } : route;
  });
}
