import { afterEach, describe, expect, it, vi } from "vitest";
import { Metrics } from "../observability/metrics";
import { PushBatcher, PushHub, type PushSocket, untilNextBeat } from "./push";

/** A socket as the hub sees it: what it was sent, and whether it was dropped. */
class FakeSocket implements PushSocket {
  bufferedAmount = 0;
  sent: unknown[] = [];
  /** Every frame is sent as text (JSON), however it was encoded. */
  textFrames = true;
  pings = 0;
  terminated = false;
  closed?: number;
  private listeners: Record<string, ((data: Buffer | string) => void)[]> = {};
  send(data: string | Buffer, options?: { binary: boolean }) {
    if (typeof data !== "string" && options?.binary !== false) this.textFrames = false;
    this.sent.push(JSON.parse(data.toString()));
  }
  ping() {
    this.pings++;
  }
  terminate() {
    this.terminated = true;
    this.emit("close");
  }
  close(code: number) {
    this.closed = code;
  }
  on(event: string, listener: (data: Buffer | string) => void) {
    (this.listeners[event] ??= []).push(listener);
  }
  emit(event: string, data: Buffer | string = "") {
    for (const l of this.listeners[event] ?? []) l(data);
  }
  say(message: unknown) {
    this.emit("message", Buffer.from(typeof message === "string" ? message : JSON.stringify(message)));
  }
}

describe("push hub", () => {
  it("delivers what is published to the topic's subscribers only, and stops on unsubscribe", () => {
    const hub = new PushHub(new Metrics(false));
    const [a, b] = [new FakeSocket(), new FakeSocket()];
    hub.attach(a);
    hub.attach(b);
    a.say({ op: "subscribe", channel: "trades", key: "BTC-USDT" });
    b.say({ op: "subscribe", channel: "trades", key: "ETH-USDT" });
    hub.publish("trades", "BTC-USDT", { price: "1" });
    hub.flush();
    expect(a.sent).toEqual([{ op: "welcome", heartbeatMs: 15_000 }, { op: "subscribed", channel: "trades", key: "BTC-USDT" }, { channel: "trades", key: "BTC-USDT", data: { price: "1" } }]);
    expect(b.sent).toHaveLength(2);
    expect(a.textFrames && b.textFrames).toBe(true);
    a.say({ op: "unsubscribe", channel: "trades", key: "BTC-USDT" });
    hub.publish("trades", "BTC-USDT", { price: "2" });
    hub.flush();
    expect(a.sent.at(-1)).toEqual({ op: "unsubscribed", channel: "trades", key: "BTC-USDT" });
    hub.publish("nobody", "x", {});
  });

  it("writes a hundred subscribers a turn and the rest on the turns after, each getting everything once", async () => {
    const hub = new PushHub(new Metrics(false));
    const sockets = Array.from({ length: 250 }, () => new FakeSocket());
    for (const socket of sockets) {
      hub.attach(socket);
      socket.say({ op: "subscribe", channel: "trades", key: "BTC-USDT" });
    }
    hub.flush();
    hub.flush();
    hub.flush();
    hub.publish("trades", "BTC-USDT", { price: "1" });
    hub.flush();
    expect(sockets.filter((s) => s.sent.length === 3)).toHaveLength(100);
    for (let turn = 0; turn < 3; turn++) await new Promise((resolve) => setImmediate(resolve));
    for (const socket of sockets) expect(socket.sent.at(-1)).toEqual({ channel: "trades", key: "BTC-USDT", data: { price: "1" } });
    expect(sockets.every((s) => s.sent.length === 3)).toBe(true);
  });

  it("answers bad messages with an error naming the problem", () => {
    const hub = new PushHub(new Metrics(false));
    const s = new FakeSocket();
    hub.attach(s);
    s.say("not json");
    s.say({ op: "dance", channel: "trades", key: "K" });
    s.say({ op: "subscribe", channel: "Trades!", key: "K" });
    s.say({ op: "subscribe", channel: "trades", key: "" });
    hub.flush();
    expect(s.sent.slice(1).map((m) => (m as { code: string }).code)).toEqual(["INVALID_MESSAGE", "INVALID_OP", "INVALID_CHANNEL", "INVALID_KEY"]);
    for (let i = 0; i < 100; i++) s.say({ op: "subscribe", channel: "trades", key: `K${i}` });
    s.say({ op: "subscribe", channel: "trades", key: "one-too-many" });
    hub.flush();
    expect((s.sent.at(-1) as { code: string }).code).toBe("TOO_MANY_TOPICS");
  });

  it("drops a client that reads too slowly instead of letting its buffer grow", () => {
    const hub = new PushHub(new Metrics(false), 1_000);
    const [slow, fast] = [new FakeSocket(), new FakeSocket()];
    hub.attach(slow);
    hub.attach(fast);
    for (const s of [slow, fast]) s.say({ op: "subscribe", channel: "depth", key: "BTC-USDT" });
    hub.flush();
    slow.bufferedAmount = 990;
    hub.publish("depth", "BTC-USDT", { level: "x".repeat(50) });
    expect(slow.terminated).toBe(true);
    expect(slow.closed).toBe(1013);
    hub.flush();
    expect(fast.sent).toHaveLength(3);
    expect(hub.size).toBe(1);
    hub.publish("depth", "BTC-USDT", {});
    hub.flush();
    expect(fast.sent).toHaveLength(4);
  });

  it("writes a client's frames of one turn together, in order, and counts what is queued against its buffer", async () => {
    const hub = new PushHub(new Metrics(false), 1_000);
    const s = new FakeSocket();
    const transport = { corked: 0, writes: [] as number[], cork: () => transport.corked++, uncork: () => transport.writes.push(s.sent.length) };
    hub.attach(s, transport);
    s.say({ op: "subscribe", channel: "depth", key: "K" });
    s.say({ op: "subscribe", channel: "trades", key: "K" });
    hub.publish("depth", "K", { seq: 1 });
    hub.publish("trades", "K", [{ id: 1 }]);
    expect(s.sent).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(s.sent.map((m) => (m as { op?: string; channel?: string }).op ?? (m as { channel: string }).channel)).toEqual(["welcome", "subscribed", "subscribed", "depth", "trades"]);
    expect(transport).toMatchObject({ corked: 1, writes: [5] });
    // Queued and not yet written counts: a client whose turn's frames pass the bound is dropped.
    hub.publish("depth", "K", { level: "x".repeat(600) });
    hub.publish("depth", "K", { level: "y".repeat(600) });
    expect(s.closed).toBe(1013);
    hub.flush();
    expect(s.sent).toHaveLength(5);
  });

  it("pings every client and drops one that did not answer the last ping", () => {
    const hub = new PushHub(new Metrics(false));
    const [alive, silent] = [new FakeSocket(), new FakeSocket()];
    hub.attach(alive);
    hub.attach(silent);
    hub.heartbeat();
    expect([alive.pings, silent.pings]).toEqual([1, 1]);
    alive.emit("pong");
    hub.heartbeat();
    expect(silent.terminated).toBe(true);
    expect(alive.terminated).toBe(false);
    expect(hub.size).toBe(1);
    alive.emit("close");
    expect(hub.size).toBe(0);
  });
});

describe("push batcher", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("sends the first item at once, then what comes within each spell together, per topic, until a spell passes quiet", () => {
    vi.useFakeTimers();
    // On a beat of the 100 ms clock, as every push there is paced.
    vi.setSystemTime(1_700_000_000_000);
    const sent: [string, number[]][] = [];
    const batcher = new PushBatcher<number>((channel, key, items) => sent.push([`${channel}|${key}`, items]), 100);
    batcher.add("trades", "A", 1);
    batcher.add("trades", "B", 10);
    expect(sent).toEqual([
      ["trades|A", [1]],
      ["trades|B", [10]],
    ]);
    batcher.add("trades", "A", 2);
    batcher.add("trades", "A", 3);
    vi.advanceTimersByTime(99);
    expect(sent).toHaveLength(2);
    vi.advanceTimersByTime(1);
    // B had nothing more: its spell ended quiet, so its next item goes out at once.
    expect(sent.slice(2)).toEqual([["trades|A", [2, 3]]]);
    batcher.add("trades", "B", 11);
    expect(sent.at(-1)).toEqual(["trades|B", [11]]);
    batcher.add("trades", "A", 4);
    vi.advanceTimersByTime(100);
    expect(sent.at(-1)).toEqual(["trades|A", [4]]);
    // A quiet spell for A, then a new item goes out at once.
    vi.advanceTimersByTime(100);
    batcher.add("trades", "A", 5);
    expect(sent.at(-1)).toEqual(["trades|A", [5]]);
    batcher.add("trades", "A", 6);
    batcher.flush();
    expect(sent.at(-1)).toEqual(["trades|A", [6]]);
    expect(sent.flatMap(([topic, items]) => (topic === "trades|A" ? items : []))).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("paces every topic on the same beat of the wall clock, whenever its spell began", () => {
    vi.useFakeTimers();
    vi.setSystemTime(1_700_000_000_030);
    const sent: [string, number][] = [];
    const batcher = new PushBatcher<number>((channel, key) => sent.push([`${channel}|${key}`, Date.now()]), 100);
    batcher.add("trades", "A", 1);
    batcher.add("trades", "A", 2);
    vi.advanceTimersByTime(40);
    batcher.add("depth", "A", 1);
    batcher.add("depth", "A", 2);
    vi.advanceTimersByTime(30);
    // Both waiting lists left together, on the beat at ...100, though their spells began 40 ms apart.
    expect(sent).toEqual([
      ["trades|A", 1_700_000_000_030],
      ["depth|A", 1_700_000_000_070],
      ["trades|A", 1_700_000_000_100],
      ["depth|A", 1_700_000_000_100],
    ]);
    expect(untilNextBeat(100)).toBe(100);
  });
});
