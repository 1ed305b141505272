import { AsyncLocalStorage } from "node:async_hooks";
import type { Middleware, ServiceBroker } from "moleculer";

/** The header a stream message carries the trace it was emitted in: `<trace id>:<span id>`. */
export const TRACE_HEADER = "x-bazaar-trace";

/** The trace id a message's headers name, for the lines logged about it outside its span. */
export function traceIdOf(headers: Record<string, string>): string | undefined {
  return headers[TRACE_HEADER]?.split(":")[0] || undefined;
}

interface TraceRef {
  traceID: string;
  spanID: string;
  /** Who the traced work is for, when it is an action called for a signed-in user. */
  user?: number;
  tenant?: string;
}

/** What a log line of the work running now should say about it. */
export interface LogContext {
  traceId: string;
  user?: number;
  tenant?: string;
}

/**
 * Traces that continue across stream messages (with BAZAAR_TRACING_URL only: an AsyncLocalStorage taxes
 * every promise of the process, so untraced systems do not pay for it). An action runs inside its span,
 * so the events it emits name that span; a consumer handles such a message in a span of the same trace,
 * and the calls it makes without a context hang under it.
 */
export class MessageTracing {
  private readonly current = new AsyncLocalStorage<TraceRef>();
  private broker?: ServiceBroker;

  /** Takes the node's broker; nothing happens unless its tracing is on. */
  attach(broker: ServiceBroker): void {
    if (broker.isTracingEnabled()) this.broker = broker;
  }

  /** Whether traces are followed in this process (and so log lines can name theirs). */
  get active(): boolean {
    return this.broker !== undefined;
  }

  /** The trace of the work running now and whom it is for, if it is traced. */
  logContext(): LogContext | undefined {
    const t = this.broker ? this.current.getStore() : undefined;
    return t && { traceId: t.traceID, user: t.user, tenant: t.tenant };
  }

  /** The header for an event emitted now, if the work emitting it is traced. */
  header(): string | undefined {
    const t = this.broker && this.current.getStore();
    return t ? `${t.traceID}:${t.spanID}` : undefined;
  }

  /** Handles a message in a span that continues the trace its header names. */
  async run<T>(header: string | undefined, name: string, work: () => Promise<T>): Promise<T> {
    const [traceID, parentID] = header?.split(":") ?? [];
    if (!this.broker || !traceID || !parentID) return work();
    const span = this.broker.tracer.startSpan(name, { traceID, parentID, sampled: true, type: "stream" });
    try {
      return await this.current.run({ traceID, spanID: span.id }, work);
    } finally {
      span.finish();
    }
  }

  /** The broker middleware: actions run inside their span; calls made without a context join the current one. */
  middleware(): Middleware {
    const current = this.current;
    return {
      name: "message-tracing",
      localAction(next: (ctx: unknown) => unknown) {
        // Moleculer's action span has the context's id.
        return (ctx: { tracing?: boolean; requestID: string; id: string; meta?: { user?: { id: number; tenant?: { id: string } } } }) =>
          ctx.tracing ? current.run({ traceID: ctx.requestID, spanID: ctx.id, user: ctx.meta?.user?.id, tenant: ctx.meta?.user?.tenant?.id }, () => next(ctx)) : next(ctx);
      },
      call(next: (action: string, params: unknown, opts?: Record<string, unknown>) => unknown) {
        return (action: string, params: unknown, opts: Record<string, unknown> = {}) => {
          const t = current.getStore();
          if (!t || opts.parentCtx || opts.parentSpan) return next(action, params, opts);
          return next(action, params, { ...opts, parentSpan: { id: t.spanID, traceID: t.traceID, sampled: true } });
        };
      },
    } as unknown as Middleware;
  }
}
