"""联访 web pages served by the node's intake service (issue 9): 登记台, 待办, 案件, 联合接访, 督办看板, 查询.

Server-rendered shells (Jinja2, autoescaped) with progressive enhancement: 登记台 and 查询 work without
JavaScript; the other pages fetch the node's own services through a same-origin proxy
(`/ui/api/<service>/api/v1/...`) that forwards the user's bearer token. See README.md beside this file."""

from services.intake.web.router import build_pages_router

__all__ = ["build_pages_router"]
