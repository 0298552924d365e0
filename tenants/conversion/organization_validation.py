"""validate_tenancy --organization SLUG: the checks that apply to one organization.

Read-only, in one REPEATABLE READ, READ ONLY transaction like the whole-database validation
(tenants.conversion.validation): the organization and its owner; its rows of every legacy table
present (against its import proof when import_organization made it); their contents, ids mapped
back, against the proof's checksums; the billing values rebuilt from the billing tables against
the proof's billing digest (the same reconstruction validate_tenancy checks after M001); every
row of it in its parent's organization. An organization that was not imported has no proof:
those two checks say so and pass (the default organization's proof is the pre-migration
snapshot, which the whole-database validation checks).
"""

from __future__ import annotations

import json

from psycopg import sql

from routing.legacy import legacy_column_names
from tenants.conversion.legacy_rows import (
    BILLING_DIGEST_COLUMNS,
    IMPORTS_TABLE,
    WRITE_ORDER,
    billing_rows_of,
    digest_of,
    organization_legacy_rows,
)
from tenants.conversion.validation import (
    FAIL,
    PASS,
    RELATIONS,
    CannotValidate,
    Check,
    ValidationReport,
    _timed,
    validation_transaction,
)


def validate_organization(slug: str, *, using: str = "default") -> ValidationReport:
    with validation_transaction(using) as (_connection, cursor, report):
        cursor.execute(
            "SELECT id::text, slug, is_active FROM organizations WHERE lower(slug) = lower(%s)",
            [slug.strip()],
        )
        row = cursor.fetchone()
        if row is None:
            raise CannotValidate(
                f"no organization with slug {slug!r}: list them in the admin "
                f"(/admin/tenants/organization/)"
            )
        checks = _OrganizationChecks(cursor, *row)
        report.database["organization"] = row[1]
        for check in checks.checks():
            report.checks.append(_timed(check))
    return report


class _OrganizationChecks:
    def __init__(self, cursor, organization_id: str, slug: str, is_active: bool):
        self.cursor = cursor
        self.organization_id = organization_id
        self.slug = slug
        self.is_active = is_active
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [IMPORTS_TABLE])
        self.proof = None
        self.billing_columns = True
        if cursor.fetchone()[0]:
            cursor.execute(
                f"SELECT proof, had_billing_columns FROM {IMPORTS_TABLE} "
                f"WHERE organization_id = %s",
                [organization_id],
            )
            found = cursor.fetchone()
            if found is not None:
                proof = found[0]
                self.proof = json.loads(proof) if isinstance(proof, str) else proof
                self.billing_columns = bool(found[1])
        self._digests: dict[str, dict] = {}

    def checks(self):
        return [
            self.check_organization,
            self.check_rows_present,
            self.check_content_against_import,
            self.check_billing_reconstruction,
            self.check_consistency,
        ]

    def digest(self, table: str) -> dict:
        if table not in self._digests:
            if table == "billing":
                relation = billing_rows_of(
                    organization_legacy_rows("customers", self.organization_id, billing=True)
                )
                self._digests[table] = digest_of(self.cursor, relation, BILLING_DIGEST_COLUMNS)
            else:
                self._digests[table] = digest_of(
                    self.cursor,
                    organization_legacy_rows(
                        table, self.organization_id, billing=self.billing_columns
                    ),
                    legacy_column_names(table, billing=self.billing_columns),
                )
        return self._digests[table]

    def check_organization(self) -> Check:
        self.cursor.execute(
            "SELECT count(*) FILTER (WHERE m.invitation_token IS NULL "
            "OR m.invitation_accepted_at IS NOT NULL), count(*) "
            "FROM organization_users m WHERE m.organization_id = %s AND m.role = 'owner'",
            [self.organization_id],
        )
        accepted, owners = self.cursor.fetchone()
        figures = {"active": self.is_active, "owners": owners, "accepted_owners": accepted}
        if not owners:
            return Check("organization", FAIL, figures, f"{self.slug!r} has no owner")
        state = "active" if self.is_active else "deactivated"
        pending = f", {owners - accepted} invited" if owners - accepted else ""
        return Check(
            "organization", PASS, figures, f"{self.slug!r} {state}, {accepted} owner(s){pending}"
        )

    def check_rows_present(self) -> Check:
        counts = {table: self.digest(table)["rows"] for table in WRITE_ORDER}
        listed = ", ".join(f"{table} {count}" for table, count in counts.items())
        if self.proof is None:
            return Check("rows_present", PASS, counts, f"{listed} (not imported: no proof)")
        differ = {
            table: (count, self.proof[table]["rows"])
            for table, count in counts.items()
            if count != self.proof[table]["rows"]
        }
        if differ:
            detail = ", ".join(f"{t} {n} (imported {m})" for t, (n, m) in differ.items())
            return Check("rows_present", FAIL, counts, f"rows differ from the import: {detail}")
        return Check("rows_present", PASS, counts, f"every imported row present: {listed}")

    def check_content_against_import(self) -> Check:
        if self.proof is None:
            return Check(
                "content_against_import", PASS, {}, "not imported: no import proof to compare"
            )
        differ = [t for t in WRITE_ORDER if self.digest(t) != self.proof[t]]
        figures = {t: self.digest(t)["checksum"] for t in WRITE_ORDER}
        if differ:
            return Check(
                "content_against_import",
                FAIL,
                figures,
                f"contents differ from the import's proof in {', '.join(differ)} (changed since "
                f"the import, or lost)",
            )
        return Check(
            "content_against_import",
            PASS,
            figures,
            "every table's checksum (ids mapped back) equals the source's",
        )

    def check_billing_reconstruction(self) -> Check:
        digest = self.digest("billing")
        if self.proof is None:
            return Check(
                "billing_reconstruction",
                PASS,
                digest,
                f"{digest['rows']} customers with billing values (not imported: no proof)",
            )
        expected = self.proof["billing"]
        if digest != expected:
            return Check(
                "billing_reconstruction",
                FAIL,
                {"found": digest, "imported": expected},
                f"the billing tables rebuild {digest['rows']} customers' values, the import "
                f"moved {expected['rows']}, and their checksums differ",
            )
        return Check(
            "billing_reconstruction",
            PASS,
            digest,
            f"the billing tables rebuild the source's values of {digest['rows']} customers",
        )

    def check_consistency(self) -> Check:
        figures = {}
        for relation in RELATIONS:
            self.cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [relation.child])
            if not self.cursor.fetchone()[0]:
                continue
            shared = "p.organization_id IS NULL OR " if relation.parent_may_be_shared else ""
            self.cursor.execute(
                sql.SQL(
                    "SELECT count(*) FROM {child} c LEFT JOIN {parent} p ON p.id = c.{column} "
                    "WHERE c.organization_id = %s AND c.{column} IS NOT NULL AND (p.id IS NULL "
                    "OR NOT ({shared}p.organization_id = c.organization_id))"
                ).format(
                    child=sql.Identifier(relation.child),
                    parent=sql.Identifier(relation.parent),
                    column=sql.Identifier(relation.column),
                    shared=sql.SQL(shared),
                ),
                [self.organization_id],
            )
            figures[relation.name] = self.cursor.fetchone()[0]
        bad = {name: count for name, count in figures.items() if count}
        if bad:
            detail = ", ".join(f"{name}: {count}" for name, count in bad.items())
            return Check("consistency", FAIL, figures, f"rows whose parent is not theirs: {detail}")
        return Check(
            "consistency",
            PASS,
            figures,
            f"every row of {self.slug!r} references its own organization's rows "
            f"({len(figures)} relations)",
        )
