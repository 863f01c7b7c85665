"""``/v1/keys``, ``/v1/sign`` and ``/v1/provenance``: signing keys and what the server signs."""

from __future__ import annotations

import json

from ...errors import StoreError
from ...services.supplychain import (
    evidence_json,
    key_json,
    public_key_bundle,
)
from .common import V1Handler


class KeysHandler(V1Handler):
    """``/v1/keys``: public keys trusted to sign evidence (admins only: a trusted key vouches
    for anything it signs)."""

    async def post(self) -> None:
        await self.authorize("admin:ManageKeys", "admin:keys")
        body = self.json_body(required=True)
        if not isinstance(body, dict) or set(body) - {"name", "public_key", "scope", "expires_in"}:
            raise StoreError(
                "MalformedJSON", 'the request is {"name", "public_key", "scope"?, "expires_in"?}'
            )
        pem, name = body.get("public_key"), body.get("name")
        scope, expires_in = body.get("scope", ""), body.get("expires_in")
        if not all(isinstance(v, str) for v in (pem, name, scope)):
            raise StoreError("MalformedJSON", "name, public_key and scope must be strings")
        if expires_in is not None and (
            isinstance(expires_in, bool) or not isinstance(expires_in, int | float)
        ):
            raise StoreError("MalformedJSON", "expires_in must be a number of seconds")
        key, created = await self.ctx.supplychain.add_key(
            pem, name, scope, expires_in, self.principal.id
        )
        self.audit("admin:ManageKeys", f"admin:keys/{key.key_id}", True, "trusted")
        self.set_header("Location", f"/v1/keys/{key.key_id}")
        self.write_json(key_json(key), 201 if created else 200)

    async def get(self) -> None:
        await self.authorize("supplychain:read", "admin:keys")
        self.write_json({"keys": [key_json(k) for k in await self.ctx.supplychain.list_keys()]})


class KeyHandler(V1Handler):
    async def delete(self, key_id: str) -> None:
        await self.authorize("admin:ManageKeys", f"admin:keys/{key_id}")
        await self.ctx.supplychain.revoke_key(key_id)
        self.audit("admin:ManageKeys", f"admin:keys/{key_id}", True, "revoked")
        self.set_status(204)
        self.finish()


class SignHandler(V1Handler):
    """``POST /v1/sign``: the store signs a subject with its own key (a DSSE envelope over an
    in-toto statement), attached as a signature, or as an attestation with a predicate."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        if (
            not isinstance(body, dict)
            or "subject" not in body
            or set(body)
            - {
                "subject",
                "predicate_type",
                "predicate",
            }
        ):
            raise StoreError(
                "MalformedJSON", 'the request is {"subject", "predicate_type"?, "predicate"?}'
            )
        digest, ref, resource = await self.authorized_subject(body["subject"], "supplychain:sign")
        predicate_type = body.get("predicate_type")
        if predicate_type is not None and not isinstance(predicate_type, str):
            raise StoreError("MalformedJSON", "predicate_type must be a string")
        if predicate_type is not None or body.get("predicate") is not None:
            # The store's key vouching for a predicate the caller wrote: policies trust it.
            await self.authorize("signing:Attest", resource)
        evidence, envelope = await self.ctx.supplychain.sign(
            digest, ref, predicate_type, body.get("predicate"), self.principal.id
        )
        self.audit("supplychain:sign", resource, True, f"{evidence.kind} {evidence.evidence_id}")
        dsse = json.loads(envelope)
        bundle = public_key_bundle(dsse, self.ctx.supplychain.signing_key_id)
        self.write_json({**evidence_json(evidence), "envelope": dsse, "bundle": bundle}, 201)


MAX_PROVENANCE_SUBJECTS = 1000


class ProvenanceHandler(V1Handler):
    """``POST /v1/provenance {"subjects": [{"bucket", "key"}, …]}``: the store builds SLSA v1
    provenance for objects the caller's identity wrote — from the CI platform token's verified
    claims for a workload session (``/v1/auth/exchange``), else naming the uploader — signs it
    with its own key and attaches it to each. The caller supplies no predicate fields."""

    async def post(self) -> None:
        body = self.json_body(required=True)
        subjects = body.get("subjects") if isinstance(body, dict) else None
        if (
            not isinstance(body, dict)
            or set(body) != {"subjects"}
            or not isinstance(subjects, list)
        ):
            raise StoreError(
                "MalformedJSON",
                'the request is {"subjects": [{"bucket", "key"}, …]}: the store writes the '
                "predicate itself (a predicate of your own is POST /v1/sign, for signing:Attest)",
            )
        if not 1 <= len(subjects) <= MAX_PROVENANCE_SUBJECTS:
            raise StoreError("InvalidArgument", f"give 1 to {MAX_PROVENANCE_SUBJECTS} subjects")
        resolved: list[tuple[str, str, str]] = []
        for subject in subjects:
            if not isinstance(subject, dict) or set(subject) != {"bucket", "key"}:
                raise StoreError("InvalidArgument", 'each subject is {"bucket", "key"}')
            bucket, key = str(subject["bucket"]), str(subject["key"])
            await self.authorize("supplychain:attach", f"{bucket}/{key}")
            record = await self.ctx.artifacts.head_object(bucket, key)
            # Only what this identity wrote: in a workload session, in this very session.
            wrote = (
                record.writer_session == self.principal.session
                if self.principal.session
                else record.writer == self.principal.id
            )
            if not wrote or not record.writer:
                raise StoreError(
                    "AccessDenied",
                    f"{bucket}/{key} was not written by this "
                    f"{'session' if self.principal.session else 'identity'}: provenance covers "
                    "only what the asking identity uploaded",
                    resource=f"{bucket}/{key}",
                )
            resolved.append((record.digest, key, f"{bucket}/{key}"))
        evidence, statement = await self.ctx.supplychain.build_provenance(resolved, self.principal)
        for item in evidence:
            self.audit(
                "supplychain:attach", item.subject_ref, True, f"provenance {item.evidence_id}"
            )
        self.write_json(
            {"statement": statement, "evidence": [evidence_json(e) for e in evidence]}, 201
        )
