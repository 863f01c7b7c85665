/** The store's JSON bodies, from its OpenAPI document (docs/openapi.json → openapi.d.ts). */
import type { components, paths } from "./openapi.js";

type Schemas = components["schemas"];
type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T : never;

export type Bucket = Schemas["Bucket"];
export type ObjectInfo = Schemas["Object"];
export type ObjectList = Schemas["ObjectList"];
export type Upload = Schemas["Upload"];
export type UploadPart = Schemas["UploadPart"];
/** An upload in progress with the parts the store has. */
export type UploadState = Schemas["UploadState"];
export type Evidence = Schemas["Evidence"];
export type TrustedKey = Schemas["TrustedKey"];
export type ApiToken = Schemas["Token"];
export type AuditRecord = Schemas["AuditRecord"];
export type VerificationGate = Schemas["VerificationGate"];
export type RepositoryVerificationGate = Schemas["RepositoryVerificationGate"];
export type Labels = Schemas["Labels"];
export type VerificationResult = JsonOf<paths["/v1/verify"]["post"]["responses"]["200"]>;
export type SbomSearchResult =
  JsonOf<paths["/v1/sboms/search"]["get"]["responses"]["200"]> extends { results: (infer R)[] } ? R : never;
export type AuthorizeResult = JsonOf<paths["/v1/authorize"]["post"]["responses"]["200"]>;

/** What evidence is about: an object, or any content by digest. */
export type Subject = { bucket: string; key: string } | { digest: string };

/** A verification policy (docs/user-guide.md: signatures, attestations, sbom, …). */
export type Policy = Record<string, unknown>;
