// Talks to the studio's JSON API the way every page of it does: the session cookie, the CSRF
// token in its header, and errors turned into ApiError carrying what the server pointed at.

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  /** The Dockerfile line the server blamed, if it named one. */
  get line(): number | null {
    const line = this.details["line"];
    return typeof line === "number" ? line : null;
  }
}

function cookie(name: string): string {
  const found = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
}

export interface RawBody {
  raw: Blob | ArrayBuffer;
  type: string;
}

export class Api {
  /** `token` is a share link's token, sent along so someone the owner shared with may look. */
  constructor(private readonly token: string = "") {}

  async call<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json" };
    let payload: BodyInit | undefined;
    if (body instanceof Object && "raw" in body && "type" in body) {
      payload = (body as RawBody).raw;
      headers["Content-Type"] = (body as RawBody).type;
    } else if (body !== undefined) {
      payload = JSON.stringify(body);
      headers["Content-Type"] = "application/json";
    }
    if (method !== "GET") headers["X-CSRFToken"] = cookie("csrftoken");
    const url = method === "GET" && this.token ? `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(this.token)}` : path;
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body: payload, credentials: "same-origin", signal });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new ApiError("the studio cannot be reached; check the connection", 0);
    }
    const text = await response.text();
    let data: unknown = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      const details = data && typeof data === "object" ? (data as Record<string, unknown>) : {};
      const message = typeof details["error"] === "string" ? details["error"] : `the studio answered ${response.status}`;
      throw new ApiError(message, response.status, details);
    }
    return data as T;
  }
}

/** A file path as it goes into a URL: each part escaped, the slashes kept. */
export function filePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

/** What this studio's API offers, read from its OpenAPI description, so the page asks only for
 * what the server has: predictions, lint and a layer's files may come later than the rest. */
export interface Features {
  plan: boolean;
  lint: boolean;
  stepDetail: boolean;
}

export async function features(api: Api): Promise<Features> {
  try {
    const schema = await api.call<{ paths?: Record<string, unknown> }>("GET", "/api/schema/");
    const paths = Object.keys(schema.paths ?? {});
    return {
      plan: paths.some((p) => /^\/api\/projects\/\{[^}]+\}\/plan\/$/.test(p)),
      lint: paths.some((p) => /^\/api\/projects\/\{[^}]+\}\/lint\/$/.test(p)),
      stepDetail: paths.some((p) => /^\/api\/builds\/\{[^}]+\}\/steps\/\{[^}]+\}\/$/.test(p)),
    };
  } catch {
    return { plan: false, lint: false, stepDetail: false };
  }
}
