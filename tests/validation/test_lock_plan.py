"""Every migration describes its locks in tenants.conversion.lock_plan, for tenancy_preflight."""

from django.db.migrations.loader import MigrationLoader

from tenants.conversion.lock_plan import LOCK_PLAN, NO_LOCK, lock_plan_for

LOCK_MODES = {
    NO_LOCK,
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
}


def test_every_migration_in_the_graph_has_a_lock_plan():
    graph = MigrationLoader(None, ignore_no_migrations=True).graph

    undescribed = sorted(
        f"{app}.{name}" for app, name in graph.nodes if not lock_plan_for(app, name)
    )

    assert not undescribed, (
        f"describe the locks of {', '.join(undescribed)} in tenants/conversion/lock_plan.py: the "
        f"strongest lock each takes, on which table, and whether its duration grows with the "
        f"table's size"
    )


def test_lock_plans_name_real_lock_modes_and_say_why():
    for name, plan in LOCK_PLAN.items():
        assert plan.lock in LOCK_MODES, name
        assert (plan.table is None) == (plan.lock == NO_LOCK), name
        assert plan.note, name
