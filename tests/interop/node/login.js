// One @marsaud/smb2 session for the interop matrix (tests/interop/clients.py): NEGOTIATE (2.0.2 and 2.1),
// SESSION_SETUP with raw NTLMv1, TREE_CONNECT to IPC$, then the client closes the connection (it has no
// LOGOFF). Prints one JSON line of what it did, exit status 1 and the error otherwise.
// Usage: node --openssl-legacy-provider login.js HOST PORT DOMAIN USER (password in $SMB2AUTH_PEER_PASSWORD)
'use strict';

const SMB2 = require('@marsaud/smb2');
const SMB2Connection = require('@marsaud/smb2/lib/tools/smb2-connection');
const negotiate = require('@marsaud/smb2/lib/messages/negotiate');

const [host, port, domain, username] = process.argv.slice(2);
const DIALECTS = { 0x0202: '2.0.2', 0x0210: '2.1' };

const client = new SMB2({
  share: `\\\\${host}\\IPC$`,
  port: Number(port),
  domain,
  username,
  password: process.env.SMB2AUTH_PEER_PASSWORD || '',
  autoCloseTimeout: 0,
});

// The DialectRevision of the NEGOTIATE response as the client parsed it (it keeps no dialect itself).
let dialect = null;
negotiate.onSuccess = (connection, response) => {
  const revision = response.getResponse().DialectRevision.readUInt16LE(0);
  dialect = DIALECTS[revision] || `0x${revision.toString(16)}`;
};

const timer = setTimeout(() => {
  process.stderr.write('timed out\n');
  process.exit(1);
}, 30000);

// requireConnect runs NEGOTIATE, both SESSION_SETUP legs and TREE_CONNECT, then the wrapped function.
SMB2Connection.requireConnect(function connected(done) {
  done(null);
}).call(client, (err) => {
  clearTimeout(timer);
  if (err) {
    process.stderr.write(`${err.message || err}\n`);
    process.exit(1);
  }
  const tree = client.TreeId !== undefined;
  client.disconnect();
  process.stdout.write(`${JSON.stringify({ dialect, signed: false, tree, logoff: false })}\n`);
});
