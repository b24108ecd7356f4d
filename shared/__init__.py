"""Lianfang common library: plumbing and contracts shared by every service (never one service's domain)."""
