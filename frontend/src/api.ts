// Talks to the studio's JSON API the way every page of it does: the session cookie, the CSRF
// token in its header, and errors turned into ApiError carrying what the server pointed at.
// What each endpoint takes and answers is typed from the API's own OpenAPI description:
// api-types.ts is generated from ../openapi.json (`manage.py export_openapi`, then
// `npm run api-types`), and a test keeps it current.
import type { components, operations } from "./api-types";

/** The API's schemas by name, as its OpenAPI description gives them. */
export type Schemas = components["schemas"];

type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;
type Success = 200 | 201 | 202;

/** What an operation (named by its operationId) answers when it succeeds. */
export type Answer<K extends keyof operations> = JsonOf<operations[K]["responses"][Extract<keyof operations[K]["responses"], Success>]>;

/** The JSON body an operation takes: call sites check theirs with `satisfies RequestBody<"op">`. */
export type RequestBody<K extends keyof operations> = operations[K] extends { requestBody?: infer B } ? JsonOf<NonNullable<B>> : never;

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
