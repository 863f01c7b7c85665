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

/** A presigned transfer of a batch: `method` to `href` with `headers`, no credentials. */
export type BatchAction = Schemas["BatchAction"];
/** Why one item of a batch failed: what the single call would have answered. */
export type BatchError = Schemas["BatchError"];
/** One object of {@link Client.batch}, in request order. */
export type BatchObjectResult = Schemas["BatchObjectResult"];
/** One key of {@link Client.batchHead} or {@link Client.batchDelete}, in request order. */
export type BatchKeyResult = Schemas["BatchKeyResult"];
/** One subject of {@link Client.batchVerify}, in request order. */
export type BatchVerifyResult = Schemas["BatchVerifyResult"];
/** One object of a batch request: `sha256` and `size` are required to upload. */
export type BatchObject = NonNullable<
  paths["/v1/batch"]["post"]["requestBody"]
>["content"]["application/json"]["objects"][number];
/** The answer of {@link Client.batch}. */
export type BatchResponse = JsonOf<paths["/v1/batch"]["post"]["responses"]["200"]>;
/** The answer of {@link Client.batchHead} and {@link Client.batchDelete}. */
export type BatchKeysResponse = JsonOf<paths["/v1/batch/head"]["post"]["responses"]["200"]>;
/** The answer of {@link Client.batchVerify}. */
export type BatchVerification = JsonOf<paths["/v1/batch/verify"]["post"]["responses"]["200"]>;

/** What evidence is about: an object, or any content by digest. */
export type Subject = { bucket: string; key: string } | { digest: string };

/** A verification policy (docs/user-guide.md: signatures, attestations, sbom, …). */
export type Policy = Record<string, unknown>;
