import pino, { type Logger } from "pino";

/** JSON logs to stdout; every line carries the node, and children add service and trace ids. */
export function createLogger(level: string, nodeId: string): Logger {
  return pino({ level, base: { node: nodeId }, timestamp: pino.stdTimeFunctions.isoTime });
}
