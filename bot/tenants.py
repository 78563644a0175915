"""Which tenants may use the bot (:class:`Tenants`): Teams tenants and Slack teams, per platform.

ALLOWED_TENANTS names them; where it names none for a platform, the app's own tenant is the
default when the app has one: Teams' MICROSOFT_APP_TENANT_ID (a SingleTenant or
UserAssignedMSI bot, or a MultiTenant one that names its home tenant), Slack's team as
``auth.test`` reports it for the bot token (learnt at start, :meth:`Tenants.learn_own`). With
none known the platform is open to any tenant: Teams in local mode (no MICROSOFT_APP_ID, the
Agents Playground) and a MultiTenant bot without a tenant id; the start-up log says so
(:meth:`Tenants.describe`). A Slack team not learnt yet allows nobody: the bot cannot answer
Slack before ``auth.test`` anyway.

Its own room because both sides ask it: the platforms refuse a foreign tenant's activity at
the door, and the tickets service refuses an actor of one (``Tickets.is_admin``). It names no
platform but through the settings' ids.
"""

from __future__ import annotations

import logging
from typing import Final

from bot.config import ANY_TENANT, Settings
from dialogs.messages import Platform

log = logging.getLogger(__name__)

#: Why a platform is open to any tenant, as the start-up log says it.
_OPEN_LOCAL: Final = "local mode (no MICROSOFT_APP_ID) and no ALLOWED_TENANTS for msteams"
_OPEN_MULTI: Final = (
    "a MultiTenant bot without MICROSOFT_APP_TENANT_ID and no ALLOWED_TENANTS for msteams: "
    "set ALLOWED_TENANTS to your tenant ids (or to * to allow any on purpose)"
)


class Tenants:
    """The tenants allowed per platform: listed, the app's own, or any."""

    def __init__(self, settings: Settings) -> None:
        """Read ALLOWED_TENANTS and the app's own Teams tenant from ``settings``."""
        self._listed = settings.listed_tenants()
        self._own: dict[str, str] = {}
        self._open: dict[str, str] = {}
        if Platform.TEAMS not in self._listed:
            if settings.microsoft_app_tenant_id and settings.teams_credentials:
                self._own[Platform.TEAMS] = settings.microsoft_app_tenant_id.strip().lower()
            elif not settings.teams_credentials:
                self._open[Platform.TEAMS] = _OPEN_LOCAL
            else:
                self._open[Platform.TEAMS] = _OPEN_MULTI

    def learn_own(self, platform: str, tenant: str | None) -> None:
        """The app's own tenant on ``platform`` (Slack's team, from auth.test): the default
        when ALLOWED_TENANTS names none there."""
        if tenant and platform not in self._listed and self._own.get(platform) != tenant:
            self._own[platform] = tenant
            log.info("own tenant learnt", extra={"platform": platform, "tenant": tenant})

    def allows(self, platform: str, tenant: str | None) -> bool:
        """Whether someone of ``tenant`` on ``platform`` may use the bot. A platform that is
        none of Teams' and Slack's tenanted ones (the terminal) always may."""
        if platform not in (Platform.TEAMS, Platform.SLACK):
            return True
        if platform in self._open:
            return True
        if platform == Platform.TEAMS and tenant:
            tenant = tenant.lower()
        listed = self._listed.get(platform)
        if listed is not None:
            return ANY_TENANT in listed or (bool(tenant) and tenant in listed)
        return bool(tenant) and tenant == self._own.get(platform)

    def describe(self) -> dict[str, str]:
        """Who may use the bot, per platform, for the start-up log."""
        shown: dict[str, str] = {}
        for platform in (Platform.TEAMS, Platform.SLACK):
            listed = self._listed.get(platform)
            if listed is not None:
                shown[platform] = "any" if ANY_TENANT in listed else ",".join(sorted(listed))
            elif platform in self._open:
                shown[platform] = "any: " + self._open[platform]
            elif platform in self._own:
                shown[platform] = f"{self._own[platform]} (the app's own)"
            else:
                shown[platform] = "the app's own (learnt when Slack answers auth.test)"
        return shown

    def announce(self) -> None:
        """Say at start who may use the bot; a WARNING where any tenant may, with no
        ALLOWED_TENANTS saying so on purpose."""
        shown = self.describe()
        log.info("tenants allowed", extra={"tenants": shown})
        for platform, why in self._open.items():
            log.warning(
                "any %s tenant may use the bot: %s", platform, why, extra={"platform": platform}
            )


__all__ = ["Tenants"]
