/** A small HTTP client for the gateway's JSON API, used by the CLI demo, tests and benchmarks. */
export interface ApiResponse<T = any> {
  status: number;
  body: T;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  idempotencyKey?: string;
  headers?: Record<string, string>;
}

export class ApiClient {
  constructor(readonly baseUrl: string) {}

  async request<T = any>(method: string, path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.idempotencyKey) headers["idempotency-key"] = options.idempotencyKey;
    if (options.body !== undefined) headers["content-type"] ??= "application/json";
    const res = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: options.body === undefined ? undefined : typeof options.body === "string" ? options.body : JSON.stringify(options.body),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // Not JSON (metrics text): keep the raw body.
    }
    return { status: res.status, body: body as T };
  }

  get<T = any>(path: string, token?: string) {
    return this.request<T>("GET", path, { token });
  }

  post<T = any>(path: string, body: unknown, token?: string, idempotencyKey?: string) {
    return this.request<T>("POST", path, { token, body, idempotencyKey });
  }

  put<T = any>(path: string, body: unknown, token?: string) {
    return this.request<T>("PUT", path, { token, body });
  }

  delete<T = any>(path: string, token?: string) {
    return this.request<T>("DELETE", path, { token });
  }

  /** Logs in and answers the access token; throws with the API's error when refused. */
  async login(username: string, password: string): Promise<{ token: string; id: number }> {
    const res = await this.post("/api/auth/login", { username, password });
    if (res.status !== 200) throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`);
    return { token: res.body.accessToken, id: res.body.user.id };
  }
}
