"""Members are invited by email, never picked: the admin's invitation form, the link in the
email, accepting it once, and the role rules on changing and removing members."""

import datetime
import re

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from accounts.tokens import hash_token
from tenants import services
from tenants.models import OrganizationUser, Role
from tests.tenancy_data import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "pool pump filter 2291"
ADD = "admin:tenants_organizationuser_add"


def invite(client, organization, email, role=Role.MANAGER):
    return client.post(
        reverse(ADD), {"organization": organization.pk, "email": email, "role": role}
    )


def link_in(message) -> str:
    return re.search(r"http://testserver(/invitations/[^/\s]+/)", message.body).group(1)


def change_url(membership):
    return reverse("admin:tenants_organizationuser_change", args=[membership.pk])


def test_a_new_address_gets_an_account_without_a_password_and_a_link_to_set_one(
    client, acme, staff
):
    client.force_login(staff["acme"][Role.OWNER])

    response = invite(client, acme.organization, "New.Person@Example.test")

    assert response.status_code == 302
    user = User.objects.get(email__iexact="new.person@example.test")
    assert not user.has_usable_password()
    membership = OrganizationUser.objects.get(user=user)
    (message,) = mail.outbox
    assert message.to == [user.email]
    link = link_in(message)
    token = link.split("/")[2]
    # Only the hash is stored.
    assert membership.invitation_token == hash_token(token) != token
    # Not a member until accepted: no admin access, not in the users list.
    assert not services.active_membership(user, acme.organization)

    client.logout()
    page = client.get(link)
    accepted = client.post(link, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    again = client.post(link, {"password1": "other 9931 pass", "password2": "other 9931 pass"})

    assert page.status_code == 200 and "Acme Pools" in page.content.decode()
    assert accepted.status_code == 200 and accepted.context["accepted"]
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)
    assert services.active_membership(user, acme.organization).role == Role.MANAGER
    assert again.status_code == 404  # single use
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)


def test_an_existing_account_accepts_with_its_own_password_only(client, acme, blue, staff):
    invitee = blue.members[Role.MANAGER]
    client.force_login(staff["acme"][Role.ADMIN])
    invite(client, acme.organization, invitee.email, role=Role.TECHNICIAN)
    link = link_in(mail.outbox[0])
    client.logout()

    wrong = client.post(link, {"password": "not theirs"})
    right = client.post(link, {"password": PASSWORD})

    assert wrong.status_code == 400
    assert right.status_code == 200 and right.context["accepted"]
    assert services.active_membership(invitee, acme.organization).role == Role.TECHNICIAN
    invitee.refresh_from_db()
    assert invitee.check_password(PASSWORD)  # their password, untouched


def test_the_answer_is_the_same_whether_the_address_has_an_account(client, acme, blue, staff):
    client.force_login(staff["acme"][Role.OWNER])

    answers = []
    for email in (blue.members[Role.OWNER].email, "nobody-yet@example.test"):
        response = invite(client, acme.organization, email)
        assert response.status_code == 302
        shown = [str(m) for m in client.get(response.url).context["messages"]]
        membership = OrganizationUser.objects.get(
            user__email__iexact=email, organization=acme.organization
        )
        answers.append([m.replace(email, "X").replace(str(membership.pk), "ID") for m in shown])

    assert answers[0] == answers[1]
    assert len(answers[0]) == 2


def test_an_expired_link_is_refused(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])
    invite(client, acme.organization, "late@example.test")
    link = link_in(mail.outbox[0])
    OrganizationUser.objects.filter(user__email="late@example.test").update(
        created_at=timezone.now() - services.INVITATION_LIFETIME - datetime.timedelta(minutes=1)
    )
    client.logout()

    response = client.post(link, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 404
    assert not User.objects.get(email="late@example.test").has_usable_password()


@pytest.mark.parametrize("role", [Role.MANAGER, Role.TECHNICIAN, Role.READONLY])
def test_only_owners_and_admins_invite(client, acme, staff, role):
    client.force_login(staff["acme"][role])

    response = invite(client, acme.organization, "someone@example.test", role=Role.READONLY)

    assert response.status_code == 403
    assert not User.objects.filter(email="someone@example.test").exists()


def test_nobody_invites_with_a_role_above_their_own(client, acme, staff):
    client.force_login(staff["acme"][Role.ADMIN])

    response = invite(client, acme.organization, "boss@example.test", role=Role.OWNER)

    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    assert not User.objects.filter(email="boss@example.test").exists()


def test_staff_cannot_invite_into_another_organization(client, acme, blue, staff):
    client.force_login(staff["acme"][Role.OWNER])

    response = invite(client, blue.organization, "spy@example.test")

    assert response.status_code == 200
    assert "organization" in response.context["adminform"].form.errors
    assert not User.objects.filter(email="spy@example.test").exists()


def test_an_admin_cannot_demote_or_remove_an_owner(client, acme, staff):
    owner = OrganizationUser.objects.get(
        organization=acme.organization, user=acme.members[Role.OWNER]
    )
    client.force_login(staff["acme"][Role.ADMIN])

    demoted = client.post(change_url(owner), {"role": Role.READONLY})
    removed = client.post(
        reverse("admin:tenants_organizationuser_delete", args=[owner.pk]), {"post": "yes"}
    )

    assert demoted.status_code == removed.status_code == 403
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_nobody_demotes_or_removes_the_last_owner(client, acme, staff, superuser):
    owner = OrganizationUser.objects.get(
        organization=acme.organization, user=acme.members[Role.OWNER]
    )
    for actor in (staff["acme"][Role.OWNER], superuser):
        client.force_login(actor)
        demoted = client.post(change_url(owner), {"role": Role.ADMIN})
        removed = client.post(
            reverse("admin:tenants_organizationuser_delete", args=[owner.pk]), {"post": "yes"}
        )
        assert demoted.status_code == 200
        assert "last owner" in str(demoted.context["adminform"].form.errors)
        assert removed.status_code == 403
    owner.refresh_from_db()
    assert owner.role == Role.OWNER


def test_an_owner_promotes_and_demotes_below_the_last_owner(client, acme, staff):
    manager = OrganizationUser.objects.get(
        organization=acme.organization, user=acme.members[Role.MANAGER]
    )
    client.force_login(staff["acme"][Role.OWNER])

    promoted = client.post(change_url(manager), {"role": Role.OWNER})
    manager.refresh_from_db()
    assert promoted.status_code == 302 and manager.role == Role.OWNER

    first_owner = OrganizationUser.objects.get(
        organization=acme.organization, user=acme.members[Role.OWNER]
    )
    demoted = client.post(change_url(first_owner), {"role": Role.ADMIN})
    first_owner.refresh_from_db()
    assert demoted.status_code == 302 and first_owner.role == Role.ADMIN


def test_the_members_inline_picks_nobody(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])

    page = client.get(reverse("admin:tenants_organization_change", args=[acme.organization.pk]))

    (members,) = page.context["inline_admin_formsets"]
    assert not members.has_add_permission and not members.has_change_permission
    assert "autocomplete" not in page.content.decode()
    assert "Invite a member by email" in page.content.decode()


def test_the_invitation_form_lists_no_users(client, acme, staff):
    client.force_login(staff["acme"][Role.OWNER])

    form = client.get(reverse(ADD)).context["adminform"].form

    assert "user" not in form.fields
    assert set(form.fields) == {"organization", "email", "role"}
    assert "@" not in "".join(str(choice) for choice in form.fields["role"].choices)


def test_a_bad_invitation_link_is_one_line(client, db):
    for token in ["nope", "x" * 200]:
        response = client.get(f"/invitations/{token}/")
        assert response.status_code == 404
        assert "not valid" in response.content.decode()
    # A NUL byte never reaches the view: malformed input is one line, 400.
    response = client.get("/invitations/%00/")
    assert response.status_code == 400
    assert response.content.decode().count("\n") == 1


def test_inviting_a_member_again_is_a_form_error_and_a_pending_one_gets_a_new_link(
    client, acme, staff
):
    client.force_login(staff["acme"][Role.OWNER])

    member = invite(client, acme.organization, acme.members[Role.MANAGER].email.upper())
    first = invite(client, acme.organization, "twice@example.test")
    second = invite(client, acme.organization, "twice@example.test")

    assert member.status_code == 200
    assert "already" in str(member.context["adminform"].form.errors["email"])
    assert first.status_code == second.status_code == 302
    old_link, new_link = (link_in(message) for message in mail.outbox)
    assert old_link != new_link
    client.logout()
    assert client.get(old_link).status_code == 404
    assert client.get(new_link).status_code == 200
