import { Errors } from "moleculer";

/**
 * Every failure a caller can act on is an AppError: an HTTP status, a machine-readable code
 * and, where one input is at fault, the field. Moleculer serialises `code`, `type` and `data`
 * across transporters, so the gateway maps the same error whether the call was local or remote.
 */
export class AppError extends Errors.MoleculerError {
  constructor(status: number, code: string, message: string, field?: string) {
    // A 4xx is an answer, not a fault: its stack is never read, and capturing one costs more than
    // the rest of a refused flash-sale attempt.
    const limit = Error.stackTraceLimit;
    if (status < 500) Error.stackTraceLimit = 0;
    try {
      super(message, status, code, field === undefined ? undefined : { field });
    } finally {
      Error.stackTraceLimit = limit;
    }
    this.name = "AppError";
  }
}

export const badRequest = (code: string, message: string, field?: string) => new AppError(400, code, message, field);
export const unauthorized = (message = "authentication required") => new AppError(401, "UNAUTHENTICATED", message);
export const forbidden = (code: string, message: string) => new AppError(403, code, message);
export const notFound = (code: string, message: string) => new AppError(404, code, message);
export const conflict = (code: string, message: string, field?: string) => new AppError(409, code, message, field);
export const tooMany = (code: string, message: string) => new AppError(429, code, message);

export interface ErrorBody {
  status: number;
  body: { error: { code: string; message: string; field?: string } };
}

/** Maps anything thrown below the gateway to the HTTP answer; unknown errors never leak internals. */
export function toHttpError(err: unknown): ErrorBody {
  const e = err as { code?: unknown; type?: unknown; message?: string; data?: { field?: string } };
  if (err instanceof Errors.MoleculerError || (typeof e?.code === "number" && typeof e?.type === "string")) {
    const status = e.code as number;
    if (e.type === "SERVICE_NOT_FOUND" || e.type === "SERVICE_NOT_AVAILABLE" || e.type === "BAD_GATEWAY")
      return shape(503, "SERVICE_UNAVAILABLE", "a service needed for this request is not available");
    if (e.type === "REQUEST_TIMEOUT") return shape(504, "TIMEOUT", "the request timed out");
    if (status >= 400 && status < 500) return shape(status, String(e.type), e.message ?? "", e.data?.field);
    if (status === 503) return shape(503, String(e.type), e.message ?? "");
  }
  return shape(500, "INTERNAL", "internal error");
}

function shape(status: number, code: string, message: string, field?: string): ErrorBody {
  return { status, body: { error: field === undefined ? { code, message } : { code, message, field } } };
}
