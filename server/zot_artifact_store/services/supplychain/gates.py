"""Verification gates: policies checked on downloads (buckets) and pulls (repositories)."""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import time
from typing import Any

from ...errors import StoreError
from ...metadata import SUPPLYCHAIN_GENERATION, VerificationGate
from .base import SupplyChainBase, subject_fields

log = logging.getLogger(__name__)


class GatesMixin(SupplyChainBase):
    """Verification gates: policies checked on downloads (buckets) and pulls (repositories)."""

    # ---- verification policies on buckets (audit / enforce on download) -------------------
    # How long a replica trusts what it cached without hearing of a change. A change made
    # through the store (evidence attached or dropped, a key registered or revoked, a gate set,
    # a manifest deleted) bumps the shared ``supplychain`` generation; every process reads it
    # at most once per GENERATION_POLL seconds and drops its verdicts and gates when it moved,
    # the process that made the change at once. The TTLs are backstops for what no request
    # announces: a trusted key's expiry, a bucket's settings rewritten by another path.
    GATE_TTL = 10.0
    VERDICT_TTL = 60.0
    GENERATION_POLL = 1.0

    # Repository gates: by exact name or glob ("prod/*"); the most specific one applies.
    REPO_PATTERN = re.compile(r"[a-z0-9*?]+(?:(?:[._/-]|__|-+)[a-z0-9*?]+)*")

    async def _check_gate(self, name: Any, mode: Any, rules: Any) -> None:
        if mode not in ("audit", "enforce"):
            raise StoreError("InvalidArgument", "mode is audit or enforce")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", name):
            raise StoreError("InvalidArgument", "name is 1-128 of A-Z a-z 0-9 . _ -")
        await self._verify("sha256:" + "0" * 64, rules)  # the rules must be well formed

    async def set_bucket_gate(
        self, bucket: str, name: str, mode: str, rules: Any
    ) -> dict[str, Any]:
        await self._check_gate(name, mode, rules)
        record = await self.metadata.get_bucket(bucket)
        if record is None:
            raise StoreError("NoSuchBucket", f"bucket {bucket!r} does not exist", resource=bucket)
        gate = {"name": name, "mode": mode, "policy": rules}
        record.settings["verification"] = gate
        await self.metadata.update_bucket(record)
        await self.supplychain_changed()
        return gate

    async def get_bucket_gate(self, bucket: str) -> dict[str, Any] | None:
        await self._observe_changes()
        now = time.monotonic()
        cached = self._gates.get(bucket)
        if cached is None or cached[0] < now:
            record = await self.metadata.get_bucket(bucket)
            gate = record.settings.get("verification") if record else None
            if len(self._gates) > 10_000:
                self._gates.clear()
            cached = self._gates[bucket] = (now + self.GATE_TTL, gate)
        return cached[1]

    async def delete_bucket_gate(self, bucket: str) -> None:
        record = await self.metadata.get_bucket(bucket)
        if record is None:
            raise StoreError("NoSuchBucket", f"bucket {bucket!r} does not exist", resource=bucket)
        record.settings.pop("verification", None)
        await self.metadata.update_bucket(record)
        await self.supplychain_changed()

    async def gate(self, bucket: str, digest: str) -> tuple[dict[str, Any], bool, str] | None:
        """For a download: (the bucket's gate, passed, reasons), or None without a gate."""
        gate = await self.get_bucket_gate(bucket)
        return await self._evaluate(gate, digest, f"bucket:{bucket}") if gate else None

    async def set_repo_gate(self, pattern: str, name: str, mode: str, rules: Any) -> dict[str, Any]:
        if not self.REPO_PATTERN.fullmatch(pattern) or len(pattern) > 255:
            raise StoreError("InvalidArgument", f"{pattern!r} is not a repository name or glob")
        await self._check_gate(name, mode, rules)
        await self.metadata.put_gate(
            VerificationGate(f"repo:{pattern}", name, mode, json.dumps(rules), time.time())
        )
        await self.supplychain_changed()
        return {"name": name, "mode": mode, "policy": rules, "repositories": pattern}

    async def repo_gates(self) -> dict[str, dict[str, Any]]:
        """Every repository gate by pattern (kept ``GATE_TTL`` seconds)."""
        await self._observe_changes()
        now = time.monotonic()
        if self._repo_gates is None or self._repo_gates[0] < now:
            gates = {
                g.scope.removeprefix("repo:"): {
                    "name": g.name,
                    "mode": g.mode,
                    "policy": json.loads(g.document),
                    "repositories": g.scope.removeprefix("repo:"),
                }
                for g in await self.metadata.list_gates()
                if g.scope.startswith("repo:")
            }
            self._repo_gates = (now + self.GATE_TTL, gates)
        return self._repo_gates[1]

    async def delete_repo_gate(self, pattern: str) -> None:
        if not await self.metadata.delete_gate(f"repo:{pattern}"):
            raise StoreError(
                "NoSuchVerificationPolicy", f"no verification policy for repositories {pattern!r}"
            )
        await self.supplychain_changed()

    async def repo_gate(self, repo: str, digest: str) -> tuple[dict[str, Any], bool, str] | None:
        """For a pull of ``repo@digest``: the most specific matching gate's outcome."""
        gates = await self.repo_gates()
        if not gates:
            return None
        gate = gates.get(repo)
        if gate is None:
            matching = [p for p in gates if fnmatch.fnmatchcase(repo, p)]
            if not matching:
                return None
            gate = gates[max(matching, key=len)]
        return await self._evaluate(gate, digest, f"repo:{repo}")

    async def enforce_gate(
        self, outcome: tuple[dict[str, Any], bool, str] | None, resource: str, digest: str
    ) -> None:
        """Refuse a download of ``resource`` (``bucket/key``) or a pull (``repo@digest``) that
        its gate fails in enforce mode: announced as ``gate.denied``, then VerificationFailed.
        A gate in audit mode, or a subject that passed, goes through."""
        if outcome is None:
            return
        gate, passed, reasons = outcome
        if passed or gate["mode"] != "enforce":
            return
        await self.notify.emit(
            "gate.denied",
            {**subject_fields(resource), "digest": digest},
            {"policy": gate["name"], "mode": gate["mode"], "reasons": reasons[:2000]},
        )
        raise StoreError(
            "VerificationFailed",
            f"policy {gate['name']!r} refuses {resource}: {reasons}",
            resource=resource,
        )

    async def _observe_changes(self) -> None:
        """Drop cached verdicts and gates when the shared ``supplychain`` generation moved
        (another process changed evidence, keys or gates); read at most once per
        ``GENERATION_POLL`` seconds, by one caller while the others use the cache."""
        now = time.monotonic()
        if now - self._generation_read_at < self.GENERATION_POLL:
            return
        self._generation_read_at = now
        try:
            generation = await self.metadata.generation(SUPPLYCHAIN_GENERATION)
        except Exception:  # cannot tell what changed: recompute from what the store says
            log.warning("could not read the supply-chain generation", exc_info=True)
            self._forget_verdicts()
            return
        if generation != self._generation:
            self._generation = generation
            self._forget_verdicts()

    async def _evaluate(
        self, gate: dict[str, Any], digest: str, scope: str
    ) -> tuple[dict[str, Any], bool, str]:
        """(gate, passed, reasons) for a subject in ``scope``. Verdicts are kept until what
        they depend on changes (:meth:`supplychain_changed`, :meth:`_observe_changes`), at most
        ``VERDICT_TTL`` seconds; one computed while a change happened is not kept."""
        policy = gate["policy"]
        known = self._policy_keys.get(id(policy))
        if known is None or known[0] is not policy:  # a gate read anew: its canonical text
            if len(self._policy_keys) > 1000:
                self._policy_keys.clear()
            known = self._policy_keys[id(policy)] = (policy, json.dumps(policy, sort_keys=True))
        key = (digest, scope, known[1])
        now = time.monotonic()
        cached = self._results.get(key)
        if cached is None or cached[0] < now:
            epoch = self._epoch
            passed, rules = await self.verify(digest, gate["policy"], scope)
            reasons = "; ".join(f"{r.rule}: {r.reason}" for r in rules if not r.passed)
            cached = (now + self.VERDICT_TTL, passed, reasons)
            if epoch == self._epoch:
                if len(self._results) > 10_000:
                    self._results.clear()
                self._results[key] = cached
        if self.metrics is not None:
            target = "repository" if scope.startswith("repo:") else "bucket"
            decision = "pass" if cached[1] else "fail"
            self.metrics.gate_decisions.labels(target, str(gate["mode"]), decision).inc()
        return gate, cached[1], cached[2]
