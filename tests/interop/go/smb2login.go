// smb2login: one go-smb2 session against an SMB2 server for the interop matrix (tests/interop/clients.py).
// NEGOTIATE offering exactly one dialect with RequireMessageSigning, SESSION_SETUP (NTLM), TREE_CONNECT to
// IPC$, TREE_DISCONNECT, LOGOFF; prints one JSON line of what it did, exit status 1 and the error otherwise.
// The password comes from $SMB2AUTH_PEER_PASSWORD, never argv.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hirochachacha/go-smb2"
)

var dialects = map[string]uint16{"2.0.2": 0x0202, "2.1": 0x0210, "3.0": 0x0300, "3.0.2": 0x0302, "3.1.1": 0x0311}

func run(addr, user, domain, dialect string) error {
	code, ok := dialects[dialect]
	if !ok {
		return fmt.Errorf("unknown dialect %q", dialect)
	}
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	dialer := &smb2.Dialer{
		Negotiator: smb2.Negotiator{RequireMessageSigning: true, SpecifiedDialect: code},
		Initiator: &smb2.NTLMInitiator{
			User: user, Password: os.Getenv("SMB2AUTH_PEER_PASSWORD"), Domain: domain,
		},
	}
	session, err := dialer.Dial(conn)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	share, err := session.Mount(`IPC$`)
	if err != nil {
		return fmt.Errorf("tree connect: %w", err)
	}
	if err := share.Umount(); err != nil {
		return fmt.Errorf("tree disconnect: %w", err)
	}
	if err := session.Logoff(); err != nil {
		return fmt.Errorf("logoff: %w", err)
	}
	report := map[string]interface{}{"dialect": dialect, "signed": true, "tree": true, "logoff": true}
	return json.NewEncoder(os.Stdout).Encode(report)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:445", "host:port")
	user := flag.String("user", "", "user name")
	domain := flag.String("domain", "", "domain")
	dialect := flag.String("dialect", "3.1.1", "2.0.2, 2.1, 3.0, 3.0.2 or 3.1.1")
	flag.Parse()
	if err := run(*addr, *user, *domain, *dialect); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
