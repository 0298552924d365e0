"""Pages outside the admin that tenancy needs: accepting an invitation to an organization."""

from __future__ import annotations

from django import forms
from django.contrib.auth import password_validation
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters

from tenants import services


class NewPasswordForm(forms.Form):
    password1 = forms.CharField(label="Password", widget=forms.PasswordInput, strip=False)
    password2 = forms.CharField(label="Password again", widget=forms.PasswordInput, strip=False)

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            raise forms.ValidationError("the two passwords differ: type the same one twice")
        if first:
            password_validation.validate_password(first, self.user)
        return cleaned


class CurrentPasswordForm(forms.Form):
    password = forms.CharField(
        label="Your current password", widget=forms.PasswordInput, strip=False, required=False
    )


@never_cache
@sensitive_post_parameters()
def invitation_accept(request, token: str):
    """GET: who invites whom to what; POST: accept (setting the password of a new account, or
    proving an existing one with its password or its session). Any bad link: one line, 404."""
    try:
        membership = services.invitation_for_token(token)
    except services.InvitationInvalid as error:
        return render(request, "tenants/invitation.html", {"error": str(error)}, status=404)
    invitee = membership.user
    new_account = not invitee.has_usable_password()
    signed_in = request.user.is_authenticated and request.user.pk == invitee.pk
    form_class = NewPasswordForm if new_account else CurrentPasswordForm
    kwargs = {"user": invitee} if new_account else {}
    form = form_class(request.POST or None, **kwargs)
    context = {
        "membership": membership,
        "new_account": new_account,
        "signed_in": signed_in,
        "form": form,
        "title": f"Join {membership.organization}",
    }
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data.get("password1") or form.cleaned_data.get("password")
        try:
            services.invitation_accept(token=token, password=password, user=request.user)
        except services.InvitationInvalid as error:
            context["error"] = str(error)
            return render(request, "tenants/invitation.html", context, status=400)
        context["accepted"] = True
    return render(request, "tenants/invitation.html", context)
