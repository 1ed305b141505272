import pino, { type DestinationStream, type Logger } from "pino";
import type { LogContext } from "./message-tracing";

/** Keys whose values never reach a log line, wherever they appear (a config object, an error's context). */
const SECRETS = ["jwtSecret", "walletSeed", "walletHotKey", "privateKey", "sandboxSecret", "adminPassword"];

/**
 * JSON logs to stdout; every line carries the node, and children add service and trace ids. `contextOf`
 * names the trace of the work running now and whom it is for (message tracing), on lines that do not
 * name a trace themselves.
 */
export function createLogger(level: string, nodeId: string, contextOf?: () => LogContext | undefined, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { node: nodeId },
    mixin: contextOf
      ? (line: object) => {
          const context = "traceId" in line ? undefined : contextOf();
          if (!context) return {};
          const { traceId, user, tenant } = context;
          return { traceId, ...(user === undefined ? {} : { user }), ...(tenant === undefined ? {} : { tenant }) };
        }
      : undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...SECRETS, ...SECRETS.map((k) => `*.${k}`)], censor: "[secret]" },
  };
  return destination ? pino(options, destination) : pino(options);
}
