import { randomUUID } from "node:crypto";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import fastifyWebsocket from "@fastify/websocket";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import FindMyWay from "find-my-way";
import type { ServiceBroker, ServiceSchema, Span } from "moleculer";
import { opsRoutes } from "../observability/ops.server";
import { version as VERSION } from "../../../package.json";
import { cookieValue, laneFor, laneToCarry, type RequestFacts } from "../release/release.domain";
import { servedVersions } from "../release/release.strategy";
import { type AuthUser, hasRole, type Meta } from "../runtime/action";
import { AppError, toHttpError } from "../runtime/errors";
import type { Platform } from "../runtime/platform";
import { ActivityRecorder } from "./activity";
import { PUSH_EVENT, PushHub, type PushSocket } from "./push";
import { revokedSessionKey, SESSION_REVOKED, TokenSigner } from "./jwt";
import { openApiDocument } from "./openapi";
import type { RouteDef } from "./routes";

declare module "fastify" {
  interface FastifyRequest {
    /** performance.now() at arrival (a float: no BigInt made per request). */
    startedAt: number;
    /** The matched API route's pattern, the label of its metrics. */
    routePath?: string;
    /** The tenant the request is about (its `tid`/`tenantId`, else the signed-in tenant): metrics and logs name it. */
    tenant?: string;
    user?: AuthUser;
    /** The body exactly as received (JSON requests). */
    rawBody?: string;
  }
}

export interface GatewayOptions {
  /** Action told (at most once per window per user) that an authenticated user was active. */
  activityAction?: string;
  activityWindowMs?: number;
  /** Action asked `{tid, permission}` (with the caller in meta) before a route that names a permission. */
  permissionAction?: string;
}

type Router = ReturnType<typeof FindMyWay>;

/** How long a gateway trusts a session it looked up as not revoked (the broadcast covers the gap). */
const REVOCATION_RECHECK_MS = 5_000;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/**
 * The HTTP edge: Fastify inside a Moleculer service. Routes come from the `routes` setting of every
 * service the registry knows, so a node running only the gateway serves routes of remote services.
 */
export function gatewayService(platform: Platform, options: GatewayOptions): ServiceSchema {
  const { config, clock, metrics, kv, guard } = platform;
  const signer = TokenSigner.fromConfig(config);
  const logger = platform.logger.child({ svc: "gateway" });
  const activityWindowMs = options.activityWindowMs ?? 10 * 60_000;
  let app: FastifyInstance;
  const knownRoutes = new Map<string, RouteDef>();
  let router: Router = FindMyWay();
  /** Sessions known revoked (until their tokens would have expired anyway), and when each was last looked up. */
  const revoked = new Map<string, number>();
  const checked = new Map<string, number>();
  let activity: ActivityRecorder | undefined;
  /** The one drain of this gateway: a graceful stop asks for it first, the service's own stop again. */
  let drained: Promise<void> | undefined;
  const hub = new PushHub(metrics);
  let heartbeat: NodeJS.Timeout | undefined;

  return {
    name: "gateway",
    settings: { port: config.port },
    events: {
      "$services.changed"(this: { broker: ServiceBroker }) {
        router = buildRouter(this.broker, knownRoutes);
      },
      "$broker.started"(this: { broker: ServiceBroker }) {
        router = buildRouter(this.broker, knownRoutes);
      },
      [SESSION_REVOKED](ctx: { params: { sid: string } }) {
        revoked.set(ctx.params.sid, clock.now() + config.tokenTtlSeconds * 1000);
      },
      [PUSH_EVENT](ctx: { params: { channel: string; key: string; data: unknown } }) {
        hub.publish(ctx.params.channel, ctx.params.key, ctx.params.data);
      },
    },
    async started() {
      const broker = this.broker;
      const tracing = broker.isTracingEnabled();
      // The versions some node serves: a lane only travels with a request where it can make a difference.
      const served = servedVersions(broker);
      router = buildRouter(broker, knownRoutes);
      if (options.activityAction)
        activity = new ActivityRecorder(kv, clock, activityWindowMs, (userIds, at) => broker.call(options.activityAction!, { userIds, at }), logger);
      app = Fastify({ logger: false, bodyLimit: config.bodyLimit, genReqId: () => randomUUID(), return503OnClosing: true });
      app.decorateRequest("startedAt", 0);
      app.decorateRequest("routePath", undefined);
      app.decorateRequest("tenant", undefined);
      app.decorateRequest("user", undefined);
      app.decorateRequest("rawBody", undefined);
      // The API speaks JSON only; anything else is a 415, not a string handed to an action.
      app.removeContentTypeParser("text/plain");
      // JSON parsed here so the exact bytes stay available: signed webhooks are checked against them.
      app.removeContentTypeParser("application/json");
      app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) => {
        req.rawBody = body as string;
        if ((body as string).length === 0) return done(null, undefined);
        try {
          done(null, JSON.parse(body as string));
        } catch {
          done(Object.assign(new Error("the request body is not valid JSON"), { statusCode: 400, code: "FST_ERR_CTP_INVALID_JSON_BODY" }), undefined);
        }
      });
      // Callback-style hooks: an async hook costs a promise per request on the hottest path.
      const logRequests = logger.isLevelEnabled("info");
      app.addHook("onRequest", (req, reply, done) => {
        const given = req.headers["x-request-id"];
        if (typeof given === "string" && REQUEST_ID.test(given)) req.id = given;
        reply.header("x-request-id", req.id);
        req.startedAt = performance.now();
        done();
      });
      app.addHook("onResponse", (req, reply, done) => {
        const route = req.routePath ?? req.routeOptions.url ?? "unmatched";
        const seconds = (performance.now() - req.startedAt) / 1000;
        metrics.httpRequests.labels(req.method, route, reply.statusCode).inc();
        metrics.httpDuration.labels(req.method, route).observe(seconds);
        if (req.tenant !== undefined) metrics.tenantRequests.labels(req.tenant, reply.statusCode >= 500 ? "failed" : reply.statusCode >= 400 ? "refused" : "ok").inc();
        done();
        if (!logRequests) return;
        logger.info(
          {
            traceId: req.id,
            method: req.method,
            route,
            status: reply.statusCode,
            ms: Math.round(seconds * 1e4) / 10,
            user: req.user?.id,
            tenant: req.tenant,
          },
          "http",
        );
      });
      app.setErrorHandler((err, req, reply) => sendError(err, req, reply));
      app.setNotFoundHandler((req, reply) =>
        reply.code(404).send({ error: { code: "ROUTE_NOT_FOUND", message: `no route ${req.method} ${req.url.split("?")[0]}` } }),
      );
      opsRoutes(app, platform);
      app.get("/api/openapi.json", async () => openApiDocument([...knownRoutes.values()], VERSION));
      // Swagger UI over the same document, rebuilt per request: routes arrive as services join.
      // WebSocket push at /ws: subscribe to (channel, key) topics services push to.
      // In a context of its own: the plugin's request hooks then run for /ws only, not on every API request.
      await app.register(async (ws) => {
        await ws.register(fastifyWebsocket, { options: { maxPayload: 4096 } });
        ws.get("/ws", { websocket: true }, (socket, req) => hub.attach(socket as unknown as PushSocket, req.raw.socket));
      });
      heartbeat = setInterval(() => hub.heartbeat(), 15_000);
      heartbeat.unref();
      await app.register(fastifySwagger, { mode: "static", specification: { document: openApiDocument([], VERSION) as never } });
      await app.register(fastifySwaggerUi, {
        routePrefix: "/api/docs",
        transformSpecification: () => openApiDocument([...knownRoutes.values()], VERSION),
        transformSpecificationClone: false,
      });
      app.route({ method: ["GET", "POST", "PUT", "DELETE"], url: "/api/*", handler: dispatch });
      await app.listen({ port: config.port, host: config.host });
      const address = app.server.address() as AddressInfo;
      (this.settings as { port: number }).port = address.port;
      platform.endpoint.url = `http://${config.host}:${address.port}`;
      logger.info({ port: address.port, host: config.host }, "gateway listening");

      // Refusals (most answers of a flash sale) are answered here: Fastify's error path costs more than a reply.
      async function dispatch(req: FastifyRequest, reply: FastifyReply) {
        try {
          return await route(req, reply);
        } catch (err) {
          return sendError(err, req, reply);
        }
      }

      async function route(req: FastifyRequest, reply: FastifyReply) {
        const query = req.url.indexOf("?");
        const path = query < 0 ? req.url : req.url.slice(0, query);
        const found = router.find(req.method as "GET", path);
        if (!found) {
          return reply.code(404).send({ error: { code: "ROUTE_NOT_FOUND", message: `no route ${req.method} ${path}` } });
        }
        const { route, resource } = found.store as KnownRoute;
        req.routePath = route.path;
        const authenticated = authenticate(req);
        // Awaited only when the session is due a look-up in the kv (every few seconds per session).
        const user = authenticated instanceof Promise ? await authenticated : authenticated;
        if (route.auth !== "public") {
          if (!user) throw new AppError(401, "UNAUTHENTICATED", "this route needs a bearer token");
          if (Array.isArray(route.auth) && !hasRole(user, ...route.auth))
            throw new AppError(403, "FORBIDDEN", `this route needs role ${route.auth.join(" or ")}`);
        }
        const body = req.body ?? {};
        if (typeof body !== "object" || Array.isArray(body))
          throw new AppError(400, "INVALID_BODY", "the request body must be a JSON object");
        const params = Object.assign({}, req.query, body, found.params);
        const about = (params as { tid?: unknown }).tid ?? (params as { tenantId?: unknown }).tenantId ?? user?.tenant?.id;
        if (typeof about === "string" || typeof about === "number") req.tenant = String(about);
        const idempotencyKey = req.headers["idempotency-key"];
        const meta: Meta = {
          user,
          requestId: req.id,
          ip: req.ip,
          idempotencyKey: typeof idempotencyKey === "string" ? idempotencyKey : undefined,
          lane: laneOf(req, user),
        };
        if (route.rawBody) {
          meta.rawBody = req.rawBody ?? "";
          meta.headers = headersOf(req);
        }
        // With tracing on, the request is the root span and every call hangs under it (trace id = request id).
        const span = tracing ? broker.tracer.startSpan(`HTTP ${route.method} ${route.path}`, { traceID: req.id, type: "http", tags: { method: route.method, route: route.path } }) : undefined;
        const call: { meta: Meta; requestID: string; parentSpan?: Span } = { meta, requestID: req.id };
        if (span) call.parentSpan = span;
        try {
          if (route.permission && options.permissionAction) {
            const tid = (params as { tid?: unknown; tenantId?: unknown }).tid ?? (params as { tenantId?: unknown }).tenantId;
            if (typeof tid === "string") await broker.call(options.permissionAction, { tid, permission: route.permission }, call);
          }
          if (!guard.applies(resource, true)) return answer(reply, route, await broker.call(route.action, params, call));
          const pass = guard.enter(resource, { params, meta }, true);
          const waiting = guard.ready(resource, pass);
          if (waiting) await waiting;
          return answer(reply, route, await pass.run(() => broker.call(route.action, params, call)));
        } finally {
          span?.finish();
        }
      }

      /** The release lane for this request, decided here once and carried in meta on every hop. */
      function laneOf(req: FastifyRequest, user: AuthUser | undefined): string | undefined {
        const routing = platform.routing.value;
        if (routing.rules.length === 0) return undefined;
        return laneToCarry(laneFor(routing, new HttpRequestFacts(req, user?.id), Math.random), routing, served);
      }

      function headersOf(req: FastifyRequest): Record<string, string> {
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") out[k] = v;
        return out;
      }

      function answer(reply: FastifyReply, route: RouteDef, result: unknown) {
        if (result === undefined) return reply.code(204).send();
        return reply.code(route.status ?? 200).send(result);
      }

      /** The caller, or undefined without a token; a promise only while its session is looked up in the kv. */
      function authenticate(req: FastifyRequest): AuthUser | undefined | Promise<AuthUser> {
        const header = req.headers.authorization;
        if (!header) return undefined;
        const match = /^Bearer\s+(\S+)$/i.exec(header);
        if (!match) throw new AppError(401, "INVALID_TOKEN", "Authorization must be 'Bearer <token>'");
        const user = signer.verify(match[1], clock.now());
        const revokedNow = user.sid ? sessionRevoked(user.sid) : false;
        if (revokedNow instanceof Promise) return revokedNow.then((yes) => admit(req, user, yes));
        return admit(req, user, revokedNow);
      }

      function admit(req: FastifyRequest, user: AuthUser, revokedSession: boolean): AuthUser {
        if (revokedSession) throw new AppError(401, "TOKEN_REVOKED", "this session was signed out");
        req.user = user;
        activity?.record(user.id);
        return user;
      }

      /** Revoked sessions: from the broadcast at once, from the kv (checked every few seconds per session) otherwise. */
      function sessionRevoked(sid: string): boolean | Promise<boolean> {
        const now = clock.now();
        if ((revoked.get(sid) ?? 0) > now) return true;
        if ((checked.get(sid) ?? 0) > now) return false;
        if (checked.size > 100_000) checked.clear();
        checked.set(sid, now + REVOCATION_RECHECK_MS);
        return kv.get(revokedSessionKey(sid)).then((found) => {
          if (found === null) return false;
          revoked.set(sid, now + config.tokenTtlSeconds * 1000);
          return true;
        });
      }

      function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply) {
        const fastifyCode = (err as { code?: string }).code;
        const statusCode = (err as { statusCode?: number }).statusCode;
        if (typeof fastifyCode === "string" && fastifyCode.startsWith("FST_") && statusCode && statusCode < 500) {
          const code =
            fastifyCode === "FST_ERR_CTP_BODY_TOO_LARGE"
              ? "BODY_TOO_LARGE"
              : fastifyCode === "FST_ERR_CTP_INVALID_MEDIA_TYPE"
                ? "UNSUPPORTED_MEDIA_TYPE"
                : "INVALID_BODY";
          return reply.code(statusCode).send({ error: { code, message: (err as Error).message } });
        }
        const { status, body } = toHttpError(err);
        if (status >= 500) logger.error({ err, traceId: req.id }, "request failed");
        return reply.code(status).send(body);
      }
    },
    methods: {
      /**
       * The first step of a graceful stop, while every service is still up: /ready answers 503, no new
       * connection is taken, and the requests in flight finish (their calls still have services to reach).
       */
      drain() {
        platform.readiness.ready = false;
        drained ??= (async () => {
          clearInterval(heartbeat);
          // A kept-alive connection goes idle once its last response is out; close it then, or the
          // server waits for the client's keep-alive timeout.
          const idle = setInterval(() => app?.server.closeIdleConnections(), 50);
          try {
            await app?.close();
          } finally {
            clearInterval(idle);
          }
          await activity?.flush();
        })();
        return drained;
      },
    },
    async stopped() {
      await (this as unknown as { drain(): Promise<void> }).drain();
    },
  };
}

/** What a release rule may look at in an HTTP request (a class: no closures made per request). */
class HttpRequestFacts implements RequestFacts {
  constructor(
    private readonly req: FastifyRequest,
    readonly userId: number | undefined,
  ) {}
  header(name: string): string | undefined {
    const v = this.req.headers[name];
    return typeof v === "string" ? v : undefined;
  }
  cookie(name: string): string | undefined {
    return cookieValue(this.req.headers.cookie, name);
  }
}

/** A route as the router stores it, with its guard resource name made once. */
interface KnownRoute {
  route: RouteDef;
  resource: string;
}

/**
 * Routes of every service seen so far. A route stays once seen: while no node offers its service the
 * call fails as unavailable (503), which tells a client to retry, where a 404 would tell it to give up.
 */
function buildRouter(broker: ServiceBroker, known: Map<string, RouteDef>): Router {
  const services = broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true, withActions: false }) as {
    settings?: { routes?: RouteDef[] };
  }[];
  for (const service of services)
    for (const route of service.settings?.routes ?? []) known.set(`${route.method} ${route.path}`, route);
  // Path parameters carry ids up to 160 characters (transaction gids); find-my-way stops at 100 by default.
  const router = FindMyWay({ ignoreTrailingSlash: true, maxParamLength: 256 });
  for (const route of known.values()) router.on(route.method, route.path, () => undefined, { route, resource: `${route.method} ${route.path}` } satisfies KnownRoute);
  return router;
}
