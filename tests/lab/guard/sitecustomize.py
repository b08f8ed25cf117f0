"""Installed on PYTHONPATH by the NAT lab for every Python process it starts in a lab namespace.

Such a process may reach loopback and the lab's own networks (``P2PSHARE_LAB_NETS``), and
those only while it runs in a private network namespace; anything else fails, as in pytest.
"""

from __future__ import annotations

from tests.netguard import allowed_from_env, install

install(setattr, allowed_from_env())
