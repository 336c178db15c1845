-- The daemon driven by Debian's miltertest, a milter client nobody on this
-- project wrote. Globals from the command line: sock (libmilter socket spec).

local function check(cond, what)
	if not cond then error("FAIL: " .. what) end
	mt.echo("ok: " .. what)
end

local function transaction(stress, want_header)
	local conn = mt.connect(sock, 20, 0.1)
	check(conn ~= nil, "connect to " .. sock)
	check(mt.negotiate(conn, nil, nil, nil) == nil, "negotiate")
	check(mt.test_action(conn, SMFIF_ADDHDRS), "asks to add headers")
	if stress ~= nil then
		mt.macro(conn, SMFIC_CONNECT, "{stress}", stress, "j", "mt.example")
	end
	check(mt.conninfo(conn, "client.example", "192.0.2.9") == nil, "conninfo")
	check(mt.getreply(conn) == SMFIR_CONTINUE, "connect continues")
	-- libmilter forgets later stages' macros at HELO: send HELO first.
	check(mt.helo(conn, "mt.example") == nil, "helo")
	mt.macro(conn, SMFIC_MAIL, "i", "MT0001")
	check(mt.mailfrom(conn, "<sender@example.org>") == nil, "mail from")
	check(mt.rcptto(conn, "<rcpt@example.net>") == nil, "rcpt to")
	check(mt.header(conn, "Subject", "miltertest") == nil, "header")
	check(mt.eom(conn) == nil, "eom")
	check(mt.getreply(conn) == SMFIR_ACCEPT, "eom accepts")
	check(mt.eom_check(conn, MT_HDRADD, "X-Stress", want_header),
	      "adds X-Stress: " .. want_header)
	mt.disconnect(conn)
end

transaction("yes", "yes (source=macro)")
transaction("no", "no")
transaction(nil, "no (source=none)")
