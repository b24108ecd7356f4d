"""Operator tooling behind the `lianfang` command (shared/cli.py only parses and dispatches):
node_init (新节点配置), status (节点与总线状态), replay (从账本重建读模型), export (一案一卷导出)."""
