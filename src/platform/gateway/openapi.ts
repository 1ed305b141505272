import type { RouteDef } from "./routes";

type Schema = { type?: string; properties?: Record<string, unknown>; required?: string[] };

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" }, field: { type: "string" } },
    },
  },
};

/**
 * The OpenAPI 3.1 document of the routes the gateway serves, built from the services' contracts:
 * path parameters from the path, the rest of the params as query (GET) or JSON body.
 */
export function openApiDocument(routes: RouteDef[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of [...routes].sort((a, b) => a.path.localeCompare(b.path))) {
    const pathParams = [...route.path.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]);
    const input = (route.input ?? { type: "object", properties: {} }) as Schema;
    const properties = { ...(input.properties ?? {}) };
    const required = new Set(input.required ?? []);
    const parameters: unknown[] = pathParams.map((name) => ({ name, in: "path", required: true, schema: properties[name] ?? { type: "string" } }));
    for (const name of pathParams) delete properties[name];
    const operation: Record<string, unknown> = {
      operationId: route.action,
      tags: [route.action.split(".")[0]],
      responses: {
        [String(route.status ?? 200)]: { description: "success" },
        "4XX": { description: "refused: the code names the problem", content: { "application/json": { schema: errorSchema } } },
      },
    };
    if (route.auth !== "public") {
      operation.security = [{ bearer: [] }];
      if (Array.isArray(route.auth)) operation.description = `Requires role: ${route.auth.join(" or ")}.`;
    }
    if (route.method === "GET") {
      for (const [name, schema] of Object.entries(properties))
        parameters.push({ name, in: "query", required: required.has(name), schema });
    } else if (Object.keys(properties).length > 0) {
      operation.requestBody = {
        required: true,
        content: {
          "application/json": {
            schema: { type: "object", properties, required: [...required].filter((name) => name in properties) },
          },
        },
      };
    }
    if (parameters.length) operation.parameters = parameters;
    const openApiPath = route.path.replace(/:([A-Za-z]+)/g, "{$1}");
    paths[openApiPath] = { ...paths[openApiPath], [route.method.toLowerCase()]: operation };
  }
  return {
    openapi: "3.1.0",
    info: { title: "bazaar", version },
    components: { securitySchemes: { bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" } } },
    paths,
  };
}
