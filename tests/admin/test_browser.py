"""The admin in a real headless browser: Debian's chromium, driven by Selenium through Debian's
chromedriver (same package, same version), against pytest-django's live server.

The operator logs in as the superuser owner, opens the Demo Organization, reads its counts and
opens one of its customers. The screenshot of the organization page goes to
docs/admin-organization.png when ROUTEOPTIMIZER_UPDATE_SCREENSHOTS=1 (otherwise to the test's
temporary directory, so a test run never dirties the checkout).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from accounts.models import User
from routing.models import Customer
from tenants.context import organization_context
from tenants.models import Organization, OrganizationUser, Role
from tests.factories import CustomerFactory
from tests.tenancy_data import (
    PASSWORD,
    DriverFactory,
    RouteFactory,
    RouteStopFactory,
    unscoped,
)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
DOCS = Path(__file__).resolve().parents[2] / "docs"

pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="no chromium/chromedriver binary: apt-get install -y chromium chromium-driver "
        "(.ci/run installs them)",
    ),
    # The live server runs in another thread, so the data must be committed. (No serialized
    # rollback: restoring would write owner-only tables, such as the snapshot, as the
    # application role; the fixtures make what the tests need, as other flushing tests do.)
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,1500",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.implicitly_wait(5)
    yield driver
    driver.quit()


@pytest.fixture
def demo():
    """The Demo Organization with its superuser owner, as migrate seeds them, and some data."""
    organization, _ = Organization.objects.get_or_create(
        slug="demo", defaults={"name": "Demo Organization", "plan_tier": "professional"}
    )
    owner = User.objects.filter(email__iexact="brian@example.com").first()
    if owner is None:
        owner = User.objects.create_superuser("brian@example.com", PASSWORD, first_name="Brian")
    owner.set_password(PASSWORD)
    owner.is_staff = owner.is_superuser = True
    owner.save()
    OrganizationUser.objects.get_or_create(
        organization=organization, user=owner, defaults={"role": Role.OWNER}
    )
    with organization_context(organization):
        own = {"organization": organization}
        drivers = [
            DriverFactory(**own, name="Maria Lopez", color="#e67e22"),
            DriverFactory(**own, name="Sam Okafor"),
        ]
        customers = [
            CustomerFactory(
                **own,
                display_name=name,
                address=address,
                service_day=day,
                assigned_driver=drivers[n % 2],
            )
            for n, (name, address, day) in enumerate(
                [
                    ("Alvarez Residence", "12 Palm Ave, Phoenix", "monday"),
                    ("Brookside HOA Pool", "400 Brookside Dr, Phoenix", "monday"),
                    ("Chen Family", "7 Saguaro Ct, Tempe", "tuesday"),
                    ("Desert Springs Hotel", "1 Resort Blvd, Scottsdale", "tuesday"),
                ]
            )
        ]
        routes = [
            RouteFactory(**own, driver=drivers[0], service_day="monday"),
            RouteFactory(**own, driver=drivers[1], service_day="tuesday"),
        ]
        for n, customer in enumerate(customers):
            RouteStopFactory(**own, route=routes[n // 2], customer=customer, sequence=n % 2 + 1)
    return organization, customers


def test_the_operator_opens_the_demo_organization_and_one_of_its_customers(
    live_server, browser, demo, tmp_path
):
    from selenium.webdriver.common.by import By

    organization, _ = demo

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys("brian@example.com")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    assert "log out" in browser.find_element(By.ID, "logout-form").text.lower()

    browser.get(f"{live_server.url}/admin/tenants/organization/")
    browser.find_element(By.LINK_TEXT, "Demo Organization").click()

    assert browser.find_element(By.TAG_NAME, "h2").text == "Demo Organization"
    counts = {
        name: browser.find_element(By.CSS_SELECTOR, f".field-{name} .readonly").text
        for name in ("customers_count", "drivers_count", "routes_count", "route_stops_count")
    }
    assert counts == {
        "customers_count": "4",
        "drivers_count": "2",
        "routes_count": "2",
        "route_stops_count": "4",
    }
    assert "brian@example.com" in browser.find_element(By.ID, "memberships-group").text
    screenshot = tmp_path / "admin-organization.png"
    assert browser.save_screenshot(str(screenshot))
    if os.environ.get("ROUTEOPTIMIZER_UPDATE_SCREENSHOTS") == "1":
        shutil.copyfile(screenshot, DOCS / "admin-organization.png")

    browser.get(
        f"{live_server.url}/admin/routing/customer/?organization__id__exact={organization.pk}"
    )
    browser.find_element(By.LINK_TEXT, "Chen Family").click()

    assert browser.find_element(By.TAG_NAME, "h2").text == "Chen Family"
    address = browser.find_element(By.NAME, "address").get_attribute("value")
    assert address == unscoped(Customer).get(display_name="Chen Family").address


def test_an_owner_invites_a_new_member_who_sets_their_password_from_the_email(
    live_server, browser, tmp_path
):
    """The invitation flow end to end: the owner invites by email in the admin, the invitee
    opens the emailed link in a browser without a session, sets a password and is a member;
    the link then works no more."""
    import re

    from django.contrib.auth.models import Permission
    from django.core import mail
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from tenants.services import active_membership
    from tests.tenancy_data import seed_organization

    acme = seed_organization("acme", "Acme Pools")
    owner = acme.members[Role.OWNER]
    owner.is_staff = True
    owner.save()
    owner.user_permissions.set(Permission.objects.all())

    browser.get(f"{live_server.url}/admin/login/?next=/admin/")
    browser.find_element(By.NAME, "username").send_keys(owner.email)
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    browser.get(f"{live_server.url}/admin/tenants/organization/{acme.organization.pk}/change/")
    browser.find_element(By.LINK_TEXT, "Invite a member by email").click()

    assert "user" not in {
        e.get_attribute("name") for e in browser.find_elements(By.TAG_NAME, "select")
    }
    browser.find_element(By.NAME, "email").send_keys("New.Tech@Acme.test")
    Select(browser.find_element(By.NAME, "role")).select_by_value("technician")
    browser.find_element(By.NAME, "_save").click()
    assert (
        "Invitation sent to New.Tech@acme.test"
        in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    )

    (message,) = mail.outbox
    assert message.to == ["New.Tech@acme.test"]
    link = re.search(r"https?://[^/\s]+(/invitations/[^/\s]+/)", message.body).group(1)

    browser.delete_all_cookies()  # the invitee's own browser: no session
    browser.get(f"{live_server.url}{link}")
    assert "Acme Pools" in browser.find_element(By.ID, "invitation-summary").text
    browser.find_element(By.NAME, "password1").send_keys("a pool of my own 8812")
    browser.find_element(By.NAME, "password2").send_keys("a pool of my own 8812")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    accepted = browser.find_element(By.ID, "invitation-accepted").text
    assert "You are now a member of Acme Pools (technician)" in accepted
    assert browser.save_screenshot(str(tmp_path / "invitation-accepted.png"))
    invitee = User.objects.get(email__iexact="new.tech@acme.test")
    assert invitee.check_password("a pool of my own 8812")
    assert active_membership(invitee, acme.organization).role == Role.TECHNICIAN

    browser.get(f"{live_server.url}{link}")
    assert "not valid" in browser.find_element(By.ID, "invitation-error").text
