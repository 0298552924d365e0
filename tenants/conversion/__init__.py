"""The conversion kit: a legacy single-tenant database made multi-tenant, and back.

What `migrate`, `rollback_tenancy`, `contract_tenancy`, `tenancy_preflight`, `validate_tenancy`,
`backup_database`, `import_organization`, `export_organization` and `remove_organization` run
(their commands, in tenants/management/commands, are thin). The runtime tenancy (models,
context, managers, connection, middleware, row level security, permissions, API base, admin)
stays in tenants/; the legacy knowledge each app owns stays in the app (routing.legacy,
billing.legacy, geocoding.metadata) and is used from here.
"""
