"""The database side of the verified organization claim, and of the account tables' boundary.

Installed by tenants.0007_verified_organization (and re-run by every `migrate`: each statement
replaces what it defines). See tenants.claims for the claim itself and docs/tenant-isolation.md
for the whole design. In short:

- `tenancy_keys` holds the claim key's HMAC pads; only the owner reads it.
- `tenancy_claim()` (SECURITY DEFINER) verifies `app.tenancy_claim` and returns its user, its
  organizations and its platform flag, or NULLs when it is missing, forged, or made for another
  backend or transaction. `tenancy_is_platform()` is true for a verified platform claim and
  for the owner's own sessions (session_user owns the tables and said `app.unscoped = on` at
  start-up, tenants.roles); `tenancy_organizations()` is what the tenant policies compare with:
  every organization's id for the platform, the claim's ids otherwise. Nothing else widens it:
  `app.unscoped`, `app.current_organization_id` or any other setting the application role may
  write means nothing to these functions.
- The account tables (users, organization_users, api_tokens, organizations, django_admin_log,
  django_session) get row level security and guards of their own, the snapshot tables and the
  key table are the owner's alone, and Django's permission tables are read-only but for the
  platform.

Every function pins `search_path` (pg_catalog first, pg_temp last) and names the schema of
every table it reads, so an object the application role creates cannot stand in for one.
"""

from __future__ import annotations

from psycopg import sql

from tenants.claims import CLAIM_SETTING, TRANSACTION_START_SQL, key_id, key_pads, tenancy_key

ROLE_RANKS = {"owner": 5, "admin": 4, "manager": 3, "technician": 2, "readonly": 1}

_FUNCTIONS = (
    "tenancy_claim()",
    "tenancy_is_platform()",
    "tenancy_session_owns_tables()",
    "tenancy_organizations()",
    "tenancy_user_id()",
    "tenancy_current_organization()",
    "tenancy_member_role(uuid, uuid)",
    "tenancy_member_ids()",
    "tenancy_own_organization_ids()",
    "tenancy_account_id(text)",
    "tenancy_account_elsewhere(uuid)",
    "tenancy_account_create(text)",
    "tenancy_password_hash(uuid)",
    "tenancy_set_password_hash(uuid, text)",
    "tenancy_api_token(text)",
    "tenancy_api_token_membership(text)",
    "tenancy_session_load(text)",
    "tenancy_session_exists(text)",
    "tenancy_session_save(text, text, timestamptz, boolean)",
    "tenancy_session_delete(text)",
    "tenancy_session_clear_expired()",
    "tenancy_geocode_lookup(text, interval)",
    "tenancy_geocode_store(text, text, double precision, double precision, text, text, "
    "double precision, jsonb)",
    "tenancy_guard_users()",
    "tenancy_guard_memberships()",
    "tenancy_guard_organizations()",
)

# Functions only the guards call: nobody else asks who holds which role where.
_INTERNAL_FUNCTIONS = (
    "tenancy_member_role(uuid, uuid)",
    "tenancy_guard_users()",
    "tenancy_guard_memberships()",
    "tenancy_guard_organizations()",
)

# Functions the application role executes and PUBLIC does not (revoked when each is created):
# any other role that may connect to the database has no business authenticating tokens.
_APPLICATION_ONLY_FUNCTIONS = (
    "tenancy_api_token_membership(text)",
    # Since tenants.0013: the other lookups that answer without a claim, by a hash or an email.
    "tenancy_api_token(text)",
    "tenancy_account_id(text)",
    "tenancy_session_load(text)",
    "tenancy_session_exists(text)",
    "tenancy_session_save(text, text, timestamptz, boolean)",
    "tenancy_session_delete(text)",
)

# Tables only the owner may touch: the key, and the pre-migration snapshot (every legacy row's
# id and digest, across organizations).
OWNER_ONLY_TABLES = (
    "tenancy_keys",
    "tenancy_legacy_snapshot",
    "django_session",
    # The billing move's markers (M001) and the old plan's version row: maintenance reads them.
    "legacy_customer_billing",
    "legacy_service_plans",
    "alembic_version",
    # import_organization's bookkeeping (tenants.0011): sources, proofs, remapped ids.
    "tenancy_imports",
    "tenancy_import_id_map",
    # Every step of migrate and rollback_tenancy as it happened (tenants.conversion.journal).
    "tenancy_migration_journal",
)
OWNER_ONLY_PREFIXES = ("tenancy_snapshot_rows_",)
# Read by everyone, written only by the platform (a superuser's admin, or the owner).
PLATFORM_WRITTEN_TABLES = (
    "auth_group",
    "auth_group_permissions",
    "auth_permission",
    "django_content_type",
    "users_groups",
    "users_user_permissions",
)
# Organization fields that are the platform's to change: plan, limits, subscription, Stripe.
PLATFORM_ORGANIZATION_FIELDS = (
    "plan_tier",
    "subscription_status",
    "trial_ends_at",
    "trial_days",
    "stripe_customer_id",
    "stripe_subscription_id",
    "max_users",
    "max_customers",
    "max_techs",
    "max_routes_per_day",
    "features_enabled",
    "is_active",
)


def _schema(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_schema()")
        return cursor.fetchone()[0]


def _database(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database()")
        return cursor.fetchone()[0]


def _run(connection, statements) -> None:
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _format(template: str, schema: str, **extra) -> sql.Composed:
    return sql.SQL(template).format(s=sql.Identifier(schema), **extra)


# --- the claim functions --------------------------------------------------------------------------

_DEFINER = "SECURITY DEFINER PARALLEL RESTRICTED SET search_path = pg_catalog, pg_temp"

# What tenancy_claim() checks, inlined into each function the policies call (one nested SECURITY
# DEFINER call less per statement): afterwards `parts` holds the claim's fields when it verifies
# (signed with an installed key, made for this backend and this transaction), NULL otherwise.
_VERIFIED_DECLARE = """
        claim text := current_setting({setting}, true);
        parts text[];
        pads record;"""
_VERIFIED = """
        IF claim IS NULL OR claim = '' OR length(claim) > 100000 THEN
            parts := NULL;
        ELSE
            parts := string_to_array(claim, '.');
            IF cardinality(parts) <> 8 OR parts[1] <> 'v1' OR parts[3] <> pg_backend_pid()::text
               OR parts[4] <> {transaction_start}::text THEN
                parts := NULL;
            ELSE
                SELECT k.inner_pad, k.outer_pad INTO pads FROM {s}.tenancy_keys k
                WHERE k.key_id = parts[2];
                IF NOT FOUND THEN
                    parts := NULL;
                ELSIF encode(sha256(pads.outer_pad || sha256(pads.inner_pad
                        || convert_to(array_to_string(parts[1:7], '.'), 'UTF8'))), 'hex')
                      <> parts[8] THEN
                    parts := NULL;
                END IF;
            END IF;
        END IF;"""

_CLAIM_FUNCTIONS = [
    """
    CREATE TABLE IF NOT EXISTS {s}.tenancy_keys (
        key_id text PRIMARY KEY,
        inner_pad bytea NOT NULL CHECK (length(inner_pad) = 64),
        outer_pad bytea NOT NULL CHECK (length(outer_pad) = 64),
        installed_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "REVOKE ALL ON {s}.tenancy_keys FROM PUBLIC",
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_claim(
        OUT user_id uuid, OUT organization_ids uuid[], OUT platform boolean
    ) LANGUAGE plpgsql STABLE """
    + _DEFINER
    + """ AS $fn$
    DECLARE
        claim text := current_setting({setting}, true);
        parts text[];
        pads record;
    BEGIN
        IF claim IS NULL OR claim = '' OR length(claim) > 100000 THEN
            RETURN;
        END IF;
        parts := string_to_array(claim, '.');
        IF cardinality(parts) <> 8 OR parts[1] <> 'v1' THEN
            RETURN;
        END IF;
        SELECT k.inner_pad, k.outer_pad INTO pads FROM {s}.tenancy_keys k WHERE k.key_id = parts[2];
        IF NOT FOUND THEN
            RETURN;
        END IF;
        IF encode(sha256(pads.outer_pad || sha256(pads.inner_pad
                  || convert_to(array_to_string(parts[1:7], '.'), 'UTF8'))), 'hex') <> parts[8]
        THEN
            RETURN;
        END IF;
        -- Signed, so well-formed: the rest binds it to this backend's current transaction.
        IF parts[3] <> pg_backend_pid()::text OR parts[4] <> {transaction_start}::text THEN
            RETURN;
        END IF;
        user_id := nullif(parts[6], '')::uuid;
        organization_ids := CASE WHEN parts[7] = '' THEN '{{}}'::uuid[]
                                 ELSE string_to_array(parts[7], ',')::uuid[] END;
        platform := parts[5] = '1';
    END
    $fn$
    """,
    # The owner's own sessions (an operator in psql, a maintenance command): the guards on the
    # account tables let them through, with or without `app.unscoped`.
    #
    # The functions the policies call are PL/pgSQL, each verifying the claim once: a SQL function
    # that cannot be inlined (SECURITY DEFINER never is) is parsed and planned again on every
    # statement, PL/pgSQL keeps its plans for the session (tenants.0010).
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_session_owns_tables() RETURNS boolean
    LANGUAGE plpgsql STABLE """
    + _DEFINER
    + """ AS $fn$
    BEGIN
        RETURN pg_has_role(session_user,
                           (SELECT relowner FROM pg_class WHERE oid = {organizations}::regclass),
                           'USAGE');
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_is_platform() RETURNS boolean
    LANGUAGE plpgsql STABLE """
    + _DEFINER
    + """ AS $fn$
    DECLARE """
    + _VERIFIED_DECLARE
    + """
    BEGIN """
    + _VERIFIED
    + """
        RETURN coalesce(parts[5] = '1', false)
            OR (coalesce(current_setting('app.unscoped', true), '') = 'on'
                AND {s}.tenancy_session_owns_tables());
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_organizations() RETURNS uuid[]
    LANGUAGE plpgsql STABLE """
    + _DEFINER
    + """ AS $fn$
    DECLARE """
    + _VERIFIED_DECLARE
    + """
    BEGIN """
    + _VERIFIED
    + """
        IF coalesce(parts[5] = '1', false)
           OR (coalesce(current_setting('app.unscoped', true), '') = 'on'
               AND {s}.tenancy_session_owns_tables()) THEN
            RETURN ARRAY(SELECT o.id FROM {s}.organizations o);
        END IF;
        IF parts IS NULL OR parts[7] = '' THEN
            RETURN '{{}}'::uuid[];
        END IF;
        RETURN string_to_array(parts[7], ',')::uuid[];
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_user_id() RETURNS uuid
    LANGUAGE plpgsql STABLE """
    + _DEFINER
    + """ AS $fn$
    DECLARE """
    + _VERIFIED_DECLARE
    + """
    BEGIN """
    + _VERIFIED
    + """
        RETURN nullif(parts[6], '')::uuid;
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_current_organization() RETURNS uuid
    LANGUAGE plpgsql STABLE """
    + _DEFINER
    + """ AS $fn$
    DECLARE """
    + _VERIFIED_DECLARE
    + """
    BEGIN """
    + _VERIFIED
    + """
        IF parts IS NULL OR parts[7] = '' OR strpos(parts[7], ',') > 0 THEN
            RETURN NULL;
        END IF;
        RETURN parts[7]::uuid;
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_member_role(organization uuid, member uuid)
    RETURNS text LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT m.role FROM {s}.organization_users m
        WHERE m.organization_id = organization AND m.user_id = member
          AND (m.invitation_token IS NULL OR m.invitation_accepted_at IS NOT NULL)
    $fn$
    """,
]


def install_claim_functions(connection) -> None:
    """Create (or replace) the key table and the claim functions; the application role may
    call the functions but not read the key table."""
    schema = _schema(connection)
    _run(
        connection,
        [
            _format(
                template,
                schema,
                setting=sql.Literal(CLAIM_SETTING),
                transaction_start=sql.SQL(TRANSACTION_START_SQL),
                organizations=sql.Literal(f'"{schema}".organizations'),
            )
            for template in _CLAIM_FUNCTIONS
        ],
    )


def install_key(connection, raw_key: str | None = None) -> str:
    """Store the pads of the claim key Django signs with (idempotent); returns its key id."""
    key = tenancy_key(raw_key)
    inner, outer = key_pads(key)
    identifier = key_id(key)
    with connection.cursor() as cursor:
        cursor.execute(
            sql.SQL(
                "INSERT INTO {}.tenancy_keys (key_id, inner_pad, outer_pad) VALUES (%s, %s, %s) "
                "ON CONFLICT (key_id) DO NOTHING"
            ).format(sql.Identifier(_schema(connection))),
            [identifier, inner, outer],
        )
    return identifier


def installed_key_ids(connection) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key_id FROM tenancy_keys ORDER BY installed_at")
        return [row[0] for row in cursor.fetchall()]


def prune_keys(connection, *, keep: list[str]) -> list[str]:
    """Remove every installed key but `keep`; returns the ids removed."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM tenancy_keys WHERE key_id <> ALL(%s) RETURNING key_id", [list(keep)]
        )
        return [row[0] for row in cursor.fetchall()]


# --- account tables -------------------------------------------------------------------------------

# What the invitee may change of their own membership row (tenancy_guard_memberships), in the
# trigger's body. Since tenants.0013: the invitation columns only as the acceptance of a pending
# invitation younger than INVITATION_LIFETIME (its token cleared, its acceptance time set, both
# at once, as tenants.services.invitation_accept writes them), and the primary organization.
# Before, any change of them passed, so one SQL injection in the invitee's own request could
# accept an expired invitation (or a pending one by clearing its token alone).
_INVITEE_UPDATE = """
            IF (NEW.invitation_token IS NOT DISTINCT FROM OLD.invitation_token
                AND NEW.invitation_accepted_at IS NOT DISTINCT FROM OLD.invitation_accepted_at)
               OR (OLD.invitation_token IS NOT NULL AND OLD.invitation_accepted_at IS NULL
                   AND OLD.created_at > now() - {invitation_lifetime}
                   AND NEW.invitation_token IS NULL AND NEW.invitation_accepted_at IS NOT NULL)
            THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'an invitation is accepted once, before it expires'
                USING ERRCODE = '42501';"""
_INVITEE_UPDATE_BEFORE_0013 = """
            RETURN NEW;"""


def _account_function_extras(*, before_0013: bool = False) -> dict:
    """The values the account functions' templates are formatted with."""
    from tenants.services import INVITATION_LIFETIME

    lifetime = sql.SQL("make_interval(secs => {})").format(
        sql.Literal(int(INVITATION_LIFETIME.total_seconds()))
    )
    invitee = _INVITEE_UPDATE_BEFORE_0013 if before_0013 else _INVITEE_UPDATE
    return {
        "ranks": sql.Literal(__import__("json").dumps(ROLE_RANKS)),
        "fields": sql.Literal(list(PLATFORM_ORGANIZATION_FIELDS)),
        "invitee_update": sql.SQL(invitee).format(invitation_lifetime=lifetime),
    }


_ACCOUNT_FUNCTIONS = [
    # What the users and organizations policies compare with (above): the members of the claim's
    # organizations, and the organizations of the claim's user's memberships.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_member_ids() RETURNS SETOF uuid
    LANGUAGE plpgsql STABLE ROWS 20 """
    + _DEFINER
    + """ AS $fn$
    DECLARE
        organizations uuid[] := {s}.tenancy_organizations();
    BEGIN
        RETURN QUERY SELECT m.user_id FROM {s}.organization_users m
                     WHERE m.organization_id = ANY(organizations);
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_own_organization_ids() RETURNS SETOF uuid
    LANGUAGE plpgsql STABLE ROWS 3 """
    + _DEFINER
    + """ AS $fn$
    DECLARE
        member uuid := {s}.tenancy_user_id();
    BEGIN
        RETURN QUERY SELECT m.organization_id FROM {s}.organization_users m
                     WHERE m.user_id = member;
    END
    $fn$
    """,
    # Sign-in: an account's id by email (case-insensitive), nothing else about it.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_account_id(email text) RETURNS uuid
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT u.id FROM {s}.users u WHERE lower(u.email) = lower($1) LIMIT 1
    $fn$
    """,
    # Whether an account also belongs to an organization outside the claim's: then it is that
    # organization's too, and the claim's staff may not manage it (tenants.services).
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_account_elsewhere(account uuid) RETURNS boolean
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT EXISTS (SELECT 1 FROM {s}.organization_users m WHERE m.user_id = account
                       AND m.organization_id <> ALL({s}.tenancy_organizations()))
    $fn$
    """,
    # A new account for an invitation: no password, no privilege, nothing else set.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_account_create(address text) RETURNS uuid
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    DECLARE
        created uuid := gen_random_uuid();
    BEGIN
        IF {s}.tenancy_user_id() IS NULL THEN
            RAISE EXCEPTION 'accounts are created by a signed-in inviter' USING ERRCODE = '42501';
        END IF;
        INSERT INTO {s}.users (id, email, first_name, last_name, is_active, is_staff,
                               is_superuser, locale, login_count, created_at, updated_at)
        VALUES (created, address, '', '', true, false, false, 'en_US', 0, now(), now());
        RETURN created;
    END
    $fn$
    """,
    # A password hash: only the claim's own user's (or the platform's).
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_password_hash(account uuid) RETURNS text
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT u.password_hash FROM {s}.users u
        WHERE u.id = account AND (account = {s}.tenancy_user_id() OR {s}.tenancy_is_platform())
    $fn$
    """,
    # A new password hash: tenancy_guard_users decides whether this session may set it.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_set_password_hash(account uuid, hash text)
    RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
        UPDATE {s}.users SET password_hash = hash WHERE id = account;
        RETURN FOUND;
    END
    $fn$
    """,
    # An API token by the SHA-256 of its secret: no listing.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_api_token(digest text) RETURNS SETOF {s}.api_tokens
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$ SELECT * FROM {s}.api_tokens t WHERE t.key_hash = digest $fn$
    """,
    # Authentication in one query (tenants.0012): the token by the SHA-256 of its secret (equal,
    # never a pattern: no listing), the columns a request reads of it, and, while it is usable,
    # the accepted membership of its user in its organization with that user and organization:
    # what the token's holder sees once authenticated, nothing else (no hash, no password, no
    # other account). A token that is revoked, expired or whose membership is gone still gets
    # its own row, with NULLs for the rest, so authentication can say why it refuses.
    # PL/pgSQL keeps the join's plan for the session (a SECURITY DEFINER SQL function is
    # planned again on every call). Not PUBLIC's: the application role's alone.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_api_token_membership(digest text)
    RETURNS TABLE (
        id uuid, user_id uuid, organization_id uuid,
        last_used_at timestamptz, expires_at timestamptz, revoked_at timestamptz,
        membership_id uuid, membership_role text,
        membership_user_id uuid, membership_organization_id uuid,
        user_email text, user_first_name text, user_last_name text,
        user_is_active boolean, user_is_staff boolean, user_is_superuser boolean,
        organization_name text, organization_slug text, organization_is_active boolean,
        organization_subscription_status text, organization_trial_ends_at timestamptz
    ) LANGUAGE plpgsql STABLE ROWS 1 """
    + _DEFINER
    + """ AS $fn$
    BEGIN
        RETURN QUERY
        SELECT t.id, t.user_id, t.organization_id, t.last_used_at, t.expires_at, t.revoked_at,
               m.id, m.role::text, m.user_id, m.organization_id,
               u.email::text, u.first_name::text, u.last_name::text,
               u.is_active, u.is_staff, u.is_superuser,
               o.name::text, o.slug::text, o.is_active,
               o.subscription_status::text, o.trial_ends_at
        FROM {s}.api_tokens t
        LEFT JOIN {s}.organization_users m
               ON t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
              AND m.user_id = t.user_id AND m.organization_id = t.organization_id
              AND (m.invitation_token IS NULL OR m.invitation_accepted_at IS NOT NULL)
        LEFT JOIN {s}.users u ON u.id = m.user_id
        LEFT JOIN {s}.organizations o ON o.id = m.organization_id
        WHERE t.key_hash = digest;
    END
    $fn$
    """,
    "REVOKE ALL ON FUNCTION {s}.tenancy_api_token_membership(text) FROM PUBLIC",
    # Sessions, by the hash of their key only (accounts.sessions): no listing, no key stored.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_session_load(digest text) RETURNS text
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$
        SELECT s.session_data FROM {s}.django_session s
        WHERE s.session_key = digest AND s.expire_date > now()
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_session_exists(digest text) RETURNS boolean
    LANGUAGE sql STABLE """
    + _DEFINER
    + """ AS $fn$ SELECT EXISTS (SELECT 1 FROM {s}.django_session WHERE session_key = digest) $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_session_save(
        digest text, data text, expires timestamptz, must_create boolean
    ) RETURNS boolean LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
        IF must_create THEN
            INSERT INTO {s}.django_session (session_key, session_data, expire_date)
            VALUES (digest, data, expires) ON CONFLICT (session_key) DO NOTHING;
        ELSE
            INSERT INTO {s}.django_session (session_key, session_data, expire_date)
            VALUES (digest, data, expires)
            ON CONFLICT (session_key) DO UPDATE
            SET session_data = EXCLUDED.session_data, expire_date = EXCLUDED.expire_date;
        END IF;
        RETURN FOUND;
    END
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_session_delete(digest text) RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
        DELETE FROM {s}.django_session WHERE session_key = digest
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_session_clear_expired() RETURNS void
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
        DELETE FROM {s}.django_session WHERE expire_date < now()
    $fn$
    """,
    # The shared geocoding cache, by the hash of an address only: whoever knows an address may
    # look it up or store the provider's answer for it; nobody lists the addresses organizations
    # serve (direct access is the platform's, see the policies).
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_geocode_lookup(digest text, ttl interval)
    RETURNS SETOF {s}.geocoding_cache LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $fn$
        UPDATE {s}.geocoding_cache SET hit_count = hit_count + 1, last_used_at = now()
        WHERE address_hash = digest AND last_used_at >= now() - ttl
        RETURNING *
    $fn$
    """,
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_geocode_store(
        digest text, normalized text, lat double precision, lng double precision,
        formatted text, source text, certainty double precision, extra jsonb
    ) RETURNS SETOF {s}.geocoding_cache LANGUAGE sql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp AS $fn$
        INSERT INTO {s}.geocoding_cache (address_hash, normalized_address, latitude, longitude,
                                         formatted_address, provider, confidence, metadata)
        VALUES (digest, normalized, lat, lng, formatted, source, certainty, extra)
        ON CONFLICT ON CONSTRAINT idx_geocoding_cache_hash DO UPDATE SET
            latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
            formatted_address = EXCLUDED.formatted_address, provider = EXCLUDED.provider,
            confidence = EXCLUDED.confidence, metadata = EXCLUDED.metadata, last_used_at = now()
        RETURNING *
    $fn$
    """,
    # users: nobody but the platform grants staff or superuser; password, email and active flag
    # change only for oneself, or for a member of the claim's organizations who belongs to no
    # other organization, by an owner or admin there.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_guard_users() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    DECLARE
        actor uuid;
        target uuid;
        sensitive boolean;
    BEGIN
        IF {s}.tenancy_is_platform() OR {s}.tenancy_session_owns_tables() THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        -- New accounts come from the platform (the insert policy) or tenancy_account_create(),
        -- which makes them without a privilege.
        IF TG_OP = 'INSERT' THEN
            IF NEW.is_superuser OR NEW.is_staff THEN
                RAISE EXCEPTION 'only the platform creates staff or superuser accounts'
                    USING ERRCODE = '42501';
            END IF;
            RETURN NEW;
        END IF;
        IF TG_OP = 'UPDATE' AND (NEW.is_superuser IS DISTINCT FROM OLD.is_superuser
                                 OR NEW.is_staff IS DISTINCT FROM OLD.is_staff
                                 OR NEW.id IS DISTINCT FROM OLD.id) THEN
            RAISE EXCEPTION 'only the platform changes staff or superuser status'
                USING ERRCODE = '42501';
        END IF;
        actor := {s}.tenancy_user_id();
        target := OLD.id;
        -- Oneself: anything but the platform's flags (checked above).
        IF actor IS NOT NULL AND actor = target AND TG_OP = 'UPDATE' THEN
            RETURN NEW;
        END IF;
        -- Anyone else: the profile, email, password and active flag only (never a reset or
        -- verification token, never sign-in bookkeeping), and only by an owner or admin of
        -- the organizations the account has accepted, when it belongs to no other.
        IF TG_OP = 'UPDATE' AND EXISTS (
            SELECT 1 FROM jsonb_each(to_jsonb(NEW)) n JOIN jsonb_each(to_jsonb(OLD)) o USING (key)
            WHERE n.value IS DISTINCT FROM o.value
              AND key <> ALL(ARRAY['first_name', 'last_name', 'timezone', 'locale', 'updated_at',
                                   'password_hash', 'email', 'is_active'])) THEN
            RAISE EXCEPTION 'only the account itself changes its tokens and sign-in records'
                USING ERRCODE = '42501';
        END IF;
        IF actor IS NULL
           OR OLD.is_superuser
           OR EXISTS (SELECT 1 FROM {s}.organization_users m WHERE m.user_id = target
                      AND m.organization_id <> ALL({s}.tenancy_organizations()))
           OR NOT EXISTS (SELECT 1 FROM {s}.organization_users m WHERE m.user_id = target
                          AND m.organization_id = ANY({s}.tenancy_organizations())
                          AND (m.invitation_token IS NULL OR m.invitation_accepted_at IS NOT NULL)
                          AND {s}.tenancy_member_role(m.organization_id, actor)
                              IN ('owner', 'admin')) THEN
            RAISE EXCEPTION 'this account belongs to another organization or to the platform: '
                'only its owner or a superuser may change it or delete it'
                USING ERRCODE = '42501';
        END IF;
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END
    $fn$
    """,
    # organization_users: members are managed by owners and admins of that organization, who
    # grant no role above their own; a member may accept their own invitation or pick their
    # primary organization.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_guard_memberships() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    DECLARE
        actor uuid;
        organization uuid;
        actor_rank int;
        ranks constant jsonb := {ranks};
    BEGIN
        IF {s}.tenancy_is_platform() OR {s}.tenancy_session_owns_tables() THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        actor := {s}.tenancy_user_id();
        IF TG_OP = 'UPDATE' AND actor IS NOT NULL AND OLD.user_id = actor
           AND (to_jsonb(NEW) - ARRAY['invitation_token', 'invitation_accepted_at',
                                      'is_primary_org', 'updated_at'])
             = (to_jsonb(OLD) - ARRAY['invitation_token', 'invitation_accepted_at',
                                      'is_primary_org', 'updated_at']) THEN
{invitee_update}
        END IF;
        -- Nobody is made a member without accepting: a new membership is a pending invitation,
        -- and only the invitee accepts it (above).
        IF TG_OP = 'INSERT' AND (NEW.invitation_token IS NULL
                                 OR NEW.invitation_accepted_at IS NOT NULL) THEN
            RAISE EXCEPTION 'members join by invitation: insert a pending invitation'
                USING ERRCODE = '42501';
        END IF;
        IF TG_OP = 'UPDATE' AND (NEW.invitation_token IS DISTINCT FROM OLD.invitation_token
                                 OR NEW.invitation_accepted_at IS DISTINCT FROM
                                    OLD.invitation_accepted_at
                                 OR NEW.is_primary_org IS DISTINCT FROM OLD.is_primary_org) THEN
            RAISE EXCEPTION 'only the invitee accepts an invitation or picks a primary organization'
                USING ERRCODE = '42501';
        END IF;
        organization := CASE WHEN TG_OP = 'INSERT' THEN NEW.organization_id
                             ELSE OLD.organization_id END;
        actor_rank := coalesce((ranks ->> {s}.tenancy_member_role(organization, actor))::int, 0);
        IF actor IS NULL OR actor_rank < 4 THEN
            RAISE EXCEPTION 'only an owner or admin of the organization manages its members'
                USING ERRCODE = '42501';
        END IF;
        IF TG_OP <> 'INSERT' AND (ranks ->> OLD.role)::int > actor_rank THEN
            RAISE EXCEPTION 'nobody changes or removes a member whose role is above their own'
                USING ERRCODE = '42501';
        END IF;
        IF TG_OP <> 'DELETE' THEN
            IF (ranks ->> NEW.role)::int > actor_rank THEN
                RAISE EXCEPTION 'nobody grants a role above their own' USING ERRCODE = '42501';
            END IF;
            IF NEW.organization_id <> organization
               OR (TG_OP = 'UPDATE' AND NEW.user_id <> OLD.user_id) THEN
                RAISE EXCEPTION 'a membership does not move' USING ERRCODE = '42501';
            END IF;
        END IF;
        IF TG_OP <> 'INSERT' AND OLD.role = 'owner'
           AND (TG_OP = 'DELETE' OR NEW.role <> 'owner')
           AND NOT EXISTS (SELECT 1 FROM {s}.organization_users m
                           WHERE m.organization_id = organization AND m.role = 'owner'
                             AND m.id <> OLD.id) THEN
            RAISE EXCEPTION 'an organization keeps at least one owner' USING ERRCODE = '42501';
        END IF;
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END
    $fn$
    """,
    # organizations: plan, limits, subscription and Stripe fields are the platform's.
    """
    CREATE OR REPLACE FUNCTION {s}.tenancy_guard_organizations() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
        IF {s}.tenancy_is_platform() OR {s}.tenancy_session_owns_tables() THEN
            RETURN NEW;
        END IF;
        IF (SELECT bool_or(to_jsonb(NEW) -> f IS DISTINCT FROM to_jsonb(OLD) -> f)
            FROM unnest({fields}::text[]) AS f) THEN
            RAISE EXCEPTION 'plan, limits, subscription and status are changed by the platform'
                USING ERRCODE = '42501';
        END IF;
        IF coalesce({s}.tenancy_member_role(OLD.id, {s}.tenancy_user_id()), '')
           NOT IN ('owner', 'admin') THEN
            RAISE EXCEPTION 'an organization''s settings are changed by its owners and admins'
                USING ERRCODE = '42501';
        END IF;
        RETURN NEW;
    END
    $fn$
    """,
]


def _policy(name, table, command, using=None, check=None):
    parts = [f"CREATE POLICY {name} ON {{s}}.{table} FOR {command}"]
    if using:
        parts.append(f"USING ({using})")
    if check:
        parts.append(f"WITH CHECK ({check})")
    return " ".join(parts)


_ORGS = "((SELECT {s}.tenancy_organizations())::uuid[])"
_USER = "(SELECT {s}.tenancy_user_id())"
_PLATFORM = "(SELECT {s}.tenancy_is_platform())"
# The same sets tenants.0007 read with subqueries on organization_users, whose own policies the
# planner expanded into every statement on users and organizations: a function planned once per
# session (tenants.0010), hashed once per statement when a row needs it.
_MEMBER_OF_CLAIM = "id IN (SELECT {s}.tenancy_member_ids())"
_OWN_MEMBERSHIP = "id IN (SELECT {s}.tenancy_own_organization_ids())"

_ACCOUNT_POLICIES = {
    "users": [
        _policy(
            "account_visible",
            "users",
            "SELECT",
            f"id = {_USER} OR {_PLATFORM} OR {_MEMBER_OF_CLAIM}",
        ),
        _policy("account_insert", "users", "INSERT", check=_PLATFORM),
        _policy(
            "account_update",
            "users",
            "UPDATE",
            f"id = {_USER} OR {_PLATFORM} OR {_MEMBER_OF_CLAIM}",
            "true",
        ),
        _policy(
            "account_delete",
            "users",
            "DELETE",
            f"id = {_USER} OR {_PLATFORM} OR {_MEMBER_OF_CLAIM}",
        ),
    ],
    "organization_users": [
        _policy(
            "membership_visible",
            "organization_users",
            "ALL",
            f"organization_id = ANY {_ORGS} OR user_id = {_USER}",
            f"organization_id = ANY {_ORGS} OR user_id = {_USER}",
        ),
    ],
    "api_tokens": [
        _policy(
            "token_own",
            "api_tokens",
            "ALL",
            f"user_id = {_USER} OR {_PLATFORM}",
            f"{_PLATFORM} OR (user_id = {_USER} AND organization_id = ANY {_ORGS})",
        ),
    ],
    "organizations": [
        _policy(
            "organization_visible",
            "organizations",
            "SELECT",
            f"id = ANY {_ORGS} OR {_OWN_MEMBERSHIP}",
        ),
        _policy(
            "organization_update",
            "organizations",
            "UPDATE",
            f"id = ANY {_ORGS}",
            f"id = ANY {_ORGS}",
        ),
        _policy("organization_platform", "organizations", "ALL", _PLATFORM, _PLATFORM),
    ],
    "django_admin_log": [
        _policy(
            "admin_log_visible",
            "django_admin_log",
            "SELECT",
            f"{_PLATFORM} OR user_id = {_USER} OR organization_id = ANY {_ORGS}",
        ),
        _policy(
            "admin_log_insert",
            "django_admin_log",
            "INSERT",
            check=f"{_PLATFORM} OR (user_id = {_USER} AND organization_id IS NOT DISTINCT FROM "
            f"(SELECT {{s}}.tenancy_current_organization()))",
        ),
        _policy("admin_log_platform", "django_admin_log", "ALL", _PLATFORM, _PLATFORM),
    ],
    "geocoding_cache": [
        _policy("geocoding_platform", "geocoding_cache", "ALL", _PLATFORM, _PLATFORM),
    ],
    **{
        table: [
            _policy("readable", table, "SELECT", "true"),
            _policy("platform_writes", table, "ALL", _PLATFORM, _PLATFORM),
        ]
        for table in PLATFORM_WRITTEN_TABLES
    },
}
_ACCOUNT_POLICY_NAMES = {
    table: [statement.split()[2] for statement in statements]
    for table, statements in _ACCOUNT_POLICIES.items()
}

_TRIGGERS = {
    "users": ("tenancy_guard_users", "BEFORE INSERT OR UPDATE OR DELETE"),
    "organization_users": ("tenancy_guard_memberships", "BEFORE INSERT OR UPDATE OR DELETE"),
    "organizations": ("tenancy_guard_organizations", "BEFORE UPDATE"),
}


def _existing_tables(connection, schema: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace "
            "AND relkind IN ('r', 'p')",
            [schema],
        )
        return {row[0] for row in cursor.fetchall()}


def owner_only_tables(connection) -> list[str]:
    tables = _existing_tables(connection, _schema(connection))
    return sorted(
        table
        for table in tables
        if table in OWNER_ONLY_TABLES or table.startswith(OWNER_ONLY_PREFIXES)
    )


def install_account_boundary(connection, application_role: str | None) -> None:
    """Row level security, guards and privileges of the account tables (idempotent)."""
    schema = _schema(connection)
    extras = _account_function_extras()
    statements = [_format(t, schema, **extras) for t in _ACCOUNT_FUNCTIONS]
    statements.append(
        _format(
            "ALTER TABLE {s}.django_admin_log ADD COLUMN IF NOT EXISTS organization_id uuid "
            "DEFAULT {s}.tenancy_current_organization()",
            schema,
        )
    )
    for table, policies in _ACCOUNT_POLICIES.items():
        for name in _ACCOUNT_POLICY_NAMES[table]:
            statements.append(_format(f"DROP POLICY IF EXISTS {name} ON {{s}}.{table}", schema))
        statements += [_format(policy, schema) for policy in policies]
        statements.append(_format(f"ALTER TABLE {{s}}.{table} ENABLE ROW LEVEL SECURITY", schema))
    for table, (function, events) in _TRIGGERS.items():
        statements += [
            _format(f"DROP TRIGGER IF EXISTS {function} ON {{s}}.{table}", schema),
            _format(
                f"CREATE TRIGGER {function} {events} ON {{s}}.{table} "
                f"FOR EACH ROW EXECUTE FUNCTION {{s}}.{function}()",
                schema,
            ),
        ]
    # Nobody but the owner creates objects in the schema: a function or table of the
    # application role's own must not stand in for ours.
    statements.append(_format("REVOKE CREATE ON SCHEMA {s} FROM PUBLIC", schema))
    # Replacing a table's policies takes ACCESS EXCLUSIVE on it, one table after another, and the
    # old application's writes lock users and organizations too (their foreign key checks:
    # customers.organization_id, geocoded_by). Waiting for one of those while holding another
    # would deadlock with a writer, so every lock request here gives up after milliseconds and
    # the whole replacement is retried (a savepoint inside an atomic migration).
    from tenants.conversion.operations import with_short_lock

    with_short_lock(
        connection,
        lambda _cursor: _run(connection, statements),
        "replace the account tables' policies",
    )
    if application_role:
        restrict_application_role(connection, application_role)


def restrict_application_role(connection, role: str) -> None:
    """What the application role may no longer touch directly (on top of tenants.0006's grants):
    owner-only tables, password hashes, and the writes that belong to the platform."""
    schema = _schema(connection)
    role_id = sql.Identifier(role)
    statements = [
        sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(sql.Identifier(schema), role_id)
    ]
    owner_only = owner_only_tables(connection)
    for table in owner_only:
        statements.append(
            sql.SQL("REVOKE ALL ON {}.{} FROM {}").format(
                sql.Identifier(schema), sql.Identifier(table), role_id
            )
        )
    # Their sequences too (a bigserial's last_value counts the journal's steps, and nextval
    # would write): tenants.0006's default privileges grant every new sequence otherwise.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.relname FROM pg_depend d JOIN pg_class s ON s.oid = d.objid "
            "JOIN pg_class t ON t.oid = d.refobjid WHERE s.relkind = 'S' "
            "AND d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
            "AND d.deptype IN ('a', 'i') AND t.relnamespace = %s::regnamespace "
            "AND t.relname = ANY(%s)",
            [f'"{schema}"', owner_only],
        )
        sequences = sorted(row[0] for row in cursor.fetchall())
    for sequence in sequences:
        statements.append(
            sql.SQL("REVOKE ALL ON SEQUENCE {}.{} FROM PUBLIC, {}").format(
                sql.Identifier(schema), sql.Identifier(sequence), role_id
            )
        )
    # users: every column but the password hash, which only tenancy_password_hash and
    # tenancy_set_password_hash read and write. INSERT is the platform's (the policy); an
    # invitation's new account comes from tenancy_account_create().
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attname <> 'password_hash' ORDER BY attnum",
            [f'"{schema}".users'],
        )
        columns = sql.SQL(", ").join(sql.Identifier(row[0]) for row in cursor.fetchall())
    users = sql.SQL("{}.users").format(sql.Identifier(schema))
    statements += [
        sql.SQL("REVOKE SELECT, INSERT, UPDATE ON {} FROM {}").format(users, role_id),
        sql.SQL("GRANT SELECT ({c}), INSERT ({c}), UPDATE ({c}) ON {t} TO {r}").format(
            c=columns, t=users, r=role_id
        ),
        sql.SQL("REVOKE INSERT, UPDATE, DELETE ON {}.django_migrations FROM {}").format(
            sql.Identifier(schema), role_id
        ),
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT f FROM unnest(%s::text[]) f WHERE to_regprocedure(%s || '.' || f) IS NOT NULL",
            [list(_FUNCTIONS), f'"{schema}"'],
        )
        installed = {row[0] for row in cursor.fetchall()}
    # A database at an older migration may lack the newer functions (tenants.0010's).
    for function in (f for f in _FUNCTIONS if f in installed):
        statements += _execute_privileges(schema, function, role_id)
    # Temporary tables and functions would shadow ours for later requests on the same pooled
    # connection, inside their transactions and claims: the application role makes none.
    statements.append(
        sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC, {}").format(
            sql.Identifier(_database(connection)), role_id
        )
    )
    _run(connection, statements)


def _execute_privileges(schema: str, function: str, role_id: sql.Identifier) -> list:
    """Who executes `function`: nobody for the guards' own, the application role alone for
    _APPLICATION_ONLY_FUNCTIONS, the application role (and PUBLIC, PostgreSQL's default) for
    the rest."""
    templates = (
        ["REVOKE EXECUTE ON FUNCTION {}.{} FROM PUBLIC, {}"]
        if function in _INTERNAL_FUNCTIONS
        else ["GRANT EXECUTE ON FUNCTION {}.{} TO {}"]
    )
    if function in _APPLICATION_ONLY_FUNCTIONS:
        templates.insert(0, "REVOKE EXECUTE ON FUNCTION {}.{} FROM PUBLIC")
    return [
        sql.SQL(template).format(sql.Identifier(schema), sql.SQL(function), role_id)
        for template in templates
    ]


_API_TOKEN_MEMBERSHIP = "tenancy_api_token_membership(text)"


def _replace_account_functions(connection, functions, application_role, **extras) -> None:
    """(Re)create the account functions `functions` (signatures of _FUNCTIONS) alone, with
    their privileges: CREATE OR REPLACE FUNCTION, REVOKE and GRANT change the catalog only, no
    table is locked (install_account_boundary, which creates them too, would replace every
    account table's policies for nothing)."""
    schema = _schema(connection)
    extras = {**_account_function_extras(), **extras}
    statements = [
        _format(template, schema, **extras)
        for template in _ACCOUNT_FUNCTIONS
        if any(f"{{s}}.{function.split('(')[0]}(" in template for function in functions)
    ]
    for function in functions:
        if application_role:
            statements += _execute_privileges(schema, function, sql.Identifier(application_role))
        elif function in _APPLICATION_ONLY_FUNCTIONS:  # the owner serves the application
            statements.append(
                sql.SQL("REVOKE EXECUTE ON FUNCTION {}.{} FROM PUBLIC").format(
                    sql.Identifier(schema), sql.SQL(function)
                )
            )
    _run(connection, statements)


def install_api_token_membership_lookup(connection, application_role: str | None) -> None:
    """tenants.0012: tenancy_api_token_membership() alone, EXECUTE for the application role only
    (its CREATE and its REVOKE from PUBLIC, as install_account_boundary runs them)."""
    _replace_account_functions(connection, [_API_TOKEN_MEMBERSHIP], application_role)


# tenants.0013's functions: the membership guard, and the lookups PUBLIC no longer executes.
_MEMBERSHIP_GUARD = "tenancy_guard_memberships()"
_CLAIMLESS_LOOKUPS = tuple(f for f in _APPLICATION_ONLY_FUNCTIONS if f != _API_TOKEN_MEMBERSHIP)


def harden_invitations_and_lookups(connection, application_role: str | None) -> None:
    """tenants.0013: the membership guard accepts an invitation only while it is pending and
    unexpired (_INVITEE_UPDATE), and only the application role executes the lookups that
    answer without a claim (_APPLICATION_ONLY_FUNCTIONS). Catalog only."""
    _replace_account_functions(
        connection, [_MEMBERSHIP_GUARD, *_CLAIMLESS_LOOKUPS], application_role
    )


def soften_invitations_and_lookups(connection) -> None:
    """The reverse of harden_invitations_and_lookups: the guard as tenants.0007-0012 made it,
    and EXECUTE on the lookups for PUBLIC again (PostgreSQL's default)."""
    _replace_account_functions(
        connection,
        [_MEMBERSHIP_GUARD],
        None,
        **_account_function_extras(before_0013=True),
    )
    schema = _schema(connection)
    _run(
        connection,
        [
            sql.SQL("GRANT EXECUTE ON FUNCTION {}.{} TO PUBLIC").format(
                sql.Identifier(schema), sql.SQL(function)
            )
            for function in _CLAIMLESS_LOOKUPS
        ],
    )


def remove_api_token_membership_lookup(connection) -> None:
    """The reverse of install_api_token_membership_lookup."""
    _run(
        connection,
        [_format(f"DROP FUNCTION IF EXISTS {{s}}.{_API_TOKEN_MEMBERSHIP}", _schema(connection))],
    )


def remove_account_boundary(connection, application_role: str | None) -> None:
    """The reverse of install_account_boundary and install_claim_functions."""
    schema = _schema(connection)
    tables = _existing_tables(connection, schema)
    statements = []
    for table, (function, _events) in _TRIGGERS.items():
        if table in tables:
            statements.append(
                _format(f"DROP TRIGGER IF EXISTS {function} ON {{s}}.{table}", schema)
            )
    for table, names in _ACCOUNT_POLICY_NAMES.items():
        if table not in tables:
            continue
        statements.append(_format(f"ALTER TABLE {{s}}.{table} DISABLE ROW LEVEL SECURITY", schema))
        statements += [
            _format(f"DROP POLICY IF EXISTS {name} ON {{s}}.{table}", schema) for name in names
        ]
    if "django_admin_log" in tables:
        statements.append(
            _format(
                "ALTER TABLE {s}.django_admin_log DROP COLUMN IF EXISTS organization_id", schema
            )
        )
    if application_role and "users" in tables:
        statements.append(
            sql.SQL("GRANT SELECT, INSERT, UPDATE ON {}.users TO {}").format(
                sql.Identifier(schema), sql.Identifier(application_role)
            )
        )
    statements += [
        _format(f"DROP FUNCTION IF EXISTS {{s}}.{function}", schema)
        for function in reversed(_FUNCTIONS)
    ]
    statements.append(_format("DROP TABLE IF EXISTS {s}.tenancy_keys", schema))
    # PostgreSQL's default, as the legacy database had it.
    statements.append(
        sql.SQL("GRANT TEMPORARY ON DATABASE {} TO PUBLIC").format(
            sql.Identifier(_database(connection))
        )
    )
    _run(connection, statements)


# --- kept true by every migrate, checked by `check` -----------------------------------------


def claim_functions_installed(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regprocedure('tenancy_claim()') IS NOT NULL")
        return cursor.fetchone()[0]


def after_migrate(sender=None, using="default", **kwargs) -> None:
    """post_migrate: once tenants.0007 is applied, make sure the database knows the key Django
    signs with now (a new SECRET_KEY or ROUTEOPTIMIZER_TENANCY_KEY is installed beside the old
    one, see `manage.py tenancy_key`) and that the application role's limits cover new tables
    and columns."""
    from django.db import connections

    from tenants.roles import application_role_name

    connection = connections[using]
    if not claim_functions_installed(connection):
        return
    install_key(connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        current = cursor.fetchone()[0]
    role = application_role_name()
    if role != current:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            exists = cursor.fetchone() is not None
        if exists:
            restrict_application_role(connection, role)


def claim_verifies(connection) -> bool | None:
    """Whether a claim Django signs now verifies in the database (None: not installed yet).

    Signs a claim for a random organization on this connection's backend and asks
    tenancy_claim() to read it back, in a transaction that is rolled back.
    """
    import uuid

    from django.db import transaction

    from tenants.claims import ClaimInputs, sign

    if not claim_functions_installed(connection):
        return None
    probe = str(uuid.uuid4())
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        cursor.execute(f"SELECT pg_backend_pid(), {TRANSACTION_START_SQL}")
        pid, started = cursor.fetchone()
        claim = sign(ClaimInputs("", (probe,), False), backend_pid=pid, transaction_start=started)
        cursor.execute("SELECT set_config(%s, %s, true)", [CLAIM_SETTING, claim])
        cursor.execute("SELECT (tenancy_claim()).organization_ids")
        organizations = cursor.fetchone()[0]
        transaction.set_rollback(True, using=connection.alias)
    return organizations is not None and [str(o) for o in organizations] == [probe]
