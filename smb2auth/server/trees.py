"""TREE_CONNECT and TREE_DISCONNECT (MS-SMB2 3.3.5.7, 3.3.5.8): IPC$ and the configured shares, nothing
behind them (the harness serves authentication, not files)."""

from __future__ import annotations

from smb2auth.server._reply import Reply
from smb2auth.server.context import ServerContext
from smb2auth.server.sessions import ServerSession
from smb2auth.smb2.header import CompoundPart
from smb2auth.smb2.session import SessionFlags
from smb2auth.smb2.tree import (
    ShareType,
    TreeConnectRequest,
    TreeConnectResponse,
    TreeDisconnectRequest,
    TreeDisconnectResponse,
)
from smb2auth.status import NtStatus

__all__ = ["tree_connect", "tree_disconnect"]

_GENERIC_ALL = 0x001F01FF


def tree_connect(
    ctx: ServerContext, part: CompoundPart, reply: Reply, session: ServerSession
) -> Reply:
    request = TreeConnectRequest.unpack(part.body)
    path = request.path
    # Samba smbd_smb2_tree_connect: "\\server\share" names the share after the second backslash.
    if path.startswith("\\\\"):
        _, sep, share = path[2:].partition("\\")
        if not sep:
            share = ""
    else:
        share = path
    name = share.casefold()
    if name == "ipc$":
        kind = ShareType.PIPE
    elif name in ctx.shares:
        if session.flags & SessionFlags.IS_NULL:
            # Samba: an anonymous session reaches only IPC$ unless the share allows guests.
            return reply.fail(NtStatus.STATUS_ACCESS_DENIED)
        kind = ShareType.DISK
    else:
        # MS-SMB2 3.3.5.7: an unknown share -> STATUS_BAD_NETWORK_NAME.
        return reply.fail(NtStatus.STATUS_BAD_NETWORK_NAME)
    if len(session.trees) >= ctx.config.max_trees_per_session:
        return reply.fail(NtStatus.STATUS_INSUFFICIENT_RESOURCES)
    tree_id = session.next_tree_id
    session.next_tree_id = tree_id % 0xFFFFFFFE + 1
    session.trees[tree_id] = kind
    reply.tree_id = tree_id
    reply.body = TreeConnectResponse(kind, maximal_access=_GENERIC_ALL).pack()
    return reply


def tree_disconnect(part: CompoundPart, reply: Reply, session: ServerSession, tree_id: int) -> Reply:
    TreeDisconnectRequest.unpack(part.body)
    del session.trees[tree_id]
    reply.body = TreeDisconnectResponse().pack()
    return reply
