/**
 * Credentials. Each produces the headers of a request; those that fetch a token (OIDC client
 * credentials, the GitHub Actions exchange) cache it and fetch it again shortly before it
 * expires, or when the store answers 401.
 */
import { StoreError } from "./errors.js";

/** What a credential may use to fetch a token: the store's URL and the client's `fetch`. */
export interface AuthContext {
  baseUrl: string;
  fetch: typeof globalThis.fetch;
}

/** A source of credentials for requests to the store. */
export interface Credentials {
  /** The headers to add to one request. */
  headers(ctx: AuthContext): Promise<Record<string, string>>;
  /** Forget a cached token after a 401; true when trying again may help. */
  invalidate?(): boolean;
}

function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/** An API token (`zat_…`) or any bearer token. */
export function tokenAuth(token: string): Credentials {
  if (!token) throw new TypeError("tokenAuth needs a token");
  return { headers: async () => ({ Authorization: `Bearer ${token}` }) };
}

/** HTTP Basic (the root user). */
export function basicAuth(username: string, password: string): Credentials {
  const value = `Basic ${base64(`${username}:${password}`)}`;
  return { headers: async () => ({ Authorization: value }) };
}

async function jsonAnswer(response: Response, what: string): Promise<Record<string, unknown>> {
  const text = await response.text();
  if (!response.ok) {
    throw new StoreError(`${what} answered HTTP ${response.status}: ${text.slice(0, 200)}`, {
      code: "TokenRequestFailed",
      status: response.status,
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new StoreError(`${what} answered no JSON object`, { code: "InvalidTokenResponse" });
  }
  return body as Record<string, unknown>;
}

/** A bearer token fetched by `fetchToken` and reused until `refreshMargin` seconds before it expires. */
export abstract class CachedBearer implements Credentials {
  private token: string | undefined;
  private expiresAt = 0;
  private pending: Promise<string> | undefined;
  /** Tokens fetched so far (observability, tests). */
  fetches = 0;

  constructor(readonly refreshMargin: number) {}

  /** Fetch a new token: the token and its lifetime in seconds. */
  protected abstract fetchToken(ctx: AuthContext): Promise<[string, number]>;

  async headers(ctx: AuthContext): Promise<Record<string, string>> {
    if (this.token === undefined || Date.now() / 1000 >= this.expiresAt - this.refreshMargin) {
      // One fetch at a time: concurrent requests wait for the same token.
      this.pending ??= this.fetchToken(ctx).then(
        ([token, lifetime]) => {
          this.token = token;
          this.expiresAt = Date.now() / 1000 + lifetime;
          this.fetches += 1;
          this.pending = undefined;
          return token;
        },
        (err: unknown) => {
          this.pending = undefined;
          throw err;
        },
      );
      await this.pending;
    }
    return { Authorization: `Bearer ${this.token}` };
  }

  invalidate(): boolean {
    const had = this.token !== undefined;
    this.token = undefined;
    return had;
  }
}

export interface OIDCClientCredentialsOptions {
  /** The provider's issuer URL (Keycloak: `https://kc.example/realms/<realm>`); the token endpoint comes from its discovery document. */
  issuer?: string;
  /** The token endpoint, instead of `issuer`. */
  tokenUrl?: string;
  scope?: string;
  audience?: string;
  /** Seconds before expiry to fetch a new token. Default 30. */
  refreshMargin?: number;
}

/** OAuth 2 client credentials (RFC 6749 §4.4) against an OpenID provider such as Keycloak. */
export class OIDCClientCredentials extends CachedBearer {
  private tokenUrl: string | undefined;
  private readonly issuer: string | undefined;

  constructor(
    readonly clientId: string,
    private readonly clientSecret: string,
    private readonly options: OIDCClientCredentialsOptions,
  ) {
    super(options.refreshMargin ?? 30);
    if (!options.issuer && !options.tokenUrl) {
      throw new TypeError("OIDCClientCredentials needs issuer or tokenUrl");
    }
    this.issuer = options.issuer?.replace(/\/+$/, "");
    this.tokenUrl = options.tokenUrl;
  }

  protected async fetchToken(ctx: AuthContext): Promise<[string, number]> {
    if (this.tokenUrl === undefined) {
      const discovery = await jsonAnswer(
        await ctx.fetch(`${this.issuer}/.well-known/openid-configuration`),
        "the OIDC discovery document",
      );
      if (typeof discovery.token_endpoint !== "string") {
        throw new StoreError("the OIDC discovery document names no token_endpoint", {
          code: "InvalidIssuer",
        });
      }
      this.tokenUrl = discovery.token_endpoint;
    }
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (this.options.scope) form.set("scope", this.options.scope);
    if (this.options.audience) form.set("audience", this.options.audience);
    const body = await jsonAnswer(
      await ctx.fetch(this.tokenUrl, {
        method: "POST",
        body: form,
        headers: { Authorization: `Basic ${base64(`${this.clientId}:${this.clientSecret}`)}` },
      }),
      "the token endpoint",
    );
    if (typeof body.access_token !== "string") {
      throw new StoreError("the token endpoint sent no access_token", { code: "NoToken" });
    }
    return [body.access_token, Number(body.expires_in ?? 300)];
  }
}

export interface GitHubActionsAuthOptions {
  /** The audience of the runner's OIDC token, as the store's trust rule expects it. */
  audience?: string;
  /** Default: the `ACTIONS_ID_TOKEN_REQUEST_URL` environment variable. */
  requestUrl?: string;
  /** Default: the `ACTIONS_ID_TOKEN_REQUEST_TOKEN` environment variable. */
  requestToken?: string;
  /** Seconds before expiry to exchange again. Default 60. */
  refreshMargin?: number;
}

function env(name: string): string | undefined {
  // Node's process.env when there is one; nothing in a browser.
  const proc = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  return proc?.env?.[name];
}

/**
 * CI workload identity in a GitHub Actions job with `permissions: id-token: write`: the
 * runner's OIDC token is exchanged at the store (`POST /v1/auth/exchange`) for a short-lived
 * store token — no secret stored in CI. The store needs a trust rule matching the token.
 */
export class GitHubActionsAuth extends CachedBearer {
  private readonly requestUrl: string;
  private readonly requestToken: string;

  constructor(readonly options: GitHubActionsAuthOptions = {}) {
    super(options.refreshMargin ?? 60);
    const url = options.requestUrl ?? env("ACTIONS_ID_TOKEN_REQUEST_URL");
    const token = options.requestToken ?? env("ACTIONS_ID_TOKEN_REQUEST_TOKEN");
    if (!url || !token) {
      throw new StoreError(
        "ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: run inside " +
          "GitHub Actions with `permissions: id-token: write`",
        { code: "NoWorkloadIdentity" },
      );
    }
    this.requestUrl = url;
    this.requestToken = token;
  }

  protected async fetchToken(ctx: AuthContext): Promise<[string, number]> {
    let url = this.requestUrl;
    if (this.options.audience) {
      url += `${url.includes("?") ? "&" : "?"}audience=${encodeURIComponent(this.options.audience)}`;
    }
    const oidc = await jsonAnswer(
      await ctx.fetch(url, { headers: { Authorization: `Bearer ${this.requestToken}` } }),
      "the Actions OIDC token endpoint",
    );
    if (typeof oidc.value !== "string") {
      throw new StoreError("the runner sent no OIDC token", { code: "NoToken" });
    }
    const exchanged = await jsonAnswer(
      await ctx.fetch(`${ctx.baseUrl}/v1/auth/exchange`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token: oidc.value }),
      }),
      "the token exchange",
    );
    return [String(exchanged.token), Number(exchanged.expires_in ?? 300)];
  }
}
