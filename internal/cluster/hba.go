package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
)

// SuperUser is the PostgreSQL superuser pgsync creates (the pod contract
// names it too; cluster imports nothing that would give it the name).
const SuperUser = "postgres"

// HBARule is one spec.postgresql.pg_hba line, parsed as PostgreSQL's
// hba.c reads it.
type HBARule struct {
	Type      string   // local, host, hostssl, hostnossl, hostgssenc, hostnogssenc
	Databases []string // names, or the keywords all, sameuser, samerole, samegroup, replication
	Users     []string // names, +group, or the keyword all
	Address   string   // host*: CIDR, address (with Mask), hostname, all, samehost, samenet
	Mask      string
	Method    string
	Options   map[string]string
}

// hbaToken is one token of a pg_hba line.
type hbaToken struct {
	text   string
	quoted bool
}

// tokenizeHBA splits a line into fields of comma-separated tokens, as
// hba.c's next_field_expand does: whitespace separates fields, a comma
// continues the field (also across whitespace), double quotes protect
// spaces, commas and '#' and make a keyword a plain name, '#' outside
// quotes starts a comment.
func tokenizeHBA(line string) ([][]hbaToken, error) {
	var (
		fields   [][]hbaToken
		field    []hbaToken
		cur      strings.Builder
		inQuote  bool
		quoted   bool
		inToken  bool
		trailing bool // the last token ended with a comma
	)
	endToken := func() {
		if inToken {
			field = append(field, hbaToken{text: cur.String(), quoted: quoted})
			cur.Reset()
			inToken, quoted = false, false
		}
	}
	endField := func() {
		endToken()
		if len(field) > 0 {
			fields = append(fields, field)
			field = nil
		}
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case inQuote && ch == '"':
			inQuote = false
		case inQuote:
			cur.WriteByte(ch)
		case ch == '"':
			inQuote, quoted, inToken = true, true, true
			trailing = false
		case ch == '#':
			i = len(line)
		case ch == ',':
			endToken()
			trailing = true
		case ch == ' ' || ch == '\t':
			endToken()
			if !trailing {
				endField()
			}
		default:
			if !inToken && !trailing && len(field) > 0 {
				endField()
			}
			cur.WriteByte(ch)
			inToken, trailing = true, false
		}
	}
	if inQuote {
		return nil, errors.New("unterminated double quote")
	}
	if trailing {
		return nil, errors.New("a list ends with a comma")
	}
	endField()
	return fields, nil
}

var (
	hbaTypes = map[string]bool{"local": true, "host": true, "hostssl": true, "hostnossl": true, "hostgssenc": true, "hostnogssenc": true}
	// hbaMethods lists the methods of PostgreSQL 13–18's hba.c (bsd is
	// OpenBSD only; oauth is 18's, see oauthMinMajor).
	hbaMethods = []string{"trust", "reject", "scram-sha-256", "md5", "password", "gss", "sspi", "ident", "peer", "pam", "ldap", "radius", "cert", "oauth"}
	// hbaOptions are the options each method takes (hba.c's
	// parse_hba_auth_opt); clientcert belongs to every hostssl line.
	hbaOptions = map[string][]string{
		"ldap":   {"ldapserver", "ldapport", "ldapscheme", "ldaptls", "ldapprefix", "ldapsuffix", "ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapsearchattribute", "ldapsearchfilter", "ldapurl"},
		"radius": {"radiusservers", "radiussecrets", "radiusidentifiers", "radiusports"},
		"pam":    {"pamservice", "pam_use_hostname"},
		"ident":  {"map"},
		"peer":   {"map"},
		"cert":   {"map", "clientname"},
		"gss":    {"map", "include_realm", "krb_realm"},
		"sspi":   {"map", "include_realm", "krb_realm", "compat_realm", "upn_username"},
		// 18's hba.c: issuer and scope are mandatory.
		"oauth": {"issuer", "scope", "validator", "map", "delegate_ident_mapping"},
	}
	hostName = regexp.MustCompile(`^\.?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*$`)
)

// oauthMinMajor is the first major with the oauth method (PostgreSQL 18).
const oauthMinMajor = 18

// ParseHBA parses one pg_hba line (major: the PostgreSQL major, 0 when
// unknown). It refuses what postgres would refuse (syntax, unknown types,
// methods and options, malformed addresses) and what could not work or
// would defeat pgsync in a pod, saying why.
func ParseHBA(line string, major int) (HBARule, error) {
	var r HBARule
	if strings.TrimSpace(line) == "" || strings.ContainsAny(line, "\n\r") {
		return r, errors.New("must be one non-empty pg_hba.conf line")
	}
	for _, ch := range line {
		if ch < 0x20 && ch != '\t' || ch == 0x7f {
			return r, fmt.Errorf("holds a control character (%U)", ch)
		}
	}
	fields, err := tokenizeHBA(line)
	if err != nil {
		return r, err
	}
	if len(fields) == 0 {
		return r, errors.New("a comment only: it has no effect (remove it)")
	}
	single := func(f []hbaToken, what string) (hbaToken, error) {
		if len(f) != 1 {
			return hbaToken{}, fmt.Errorf("%s: one value expected, got the list %s", what, joinTokens(f))
		}
		return f[0], nil
	}
	t, err := single(fields[0], "connection type")
	if err != nil {
		return r, err
	}
	switch {
	case t.text == "include" || t.text == "include_dir" || t.text == "include_if_exists":
		return r, fmt.Errorf("%q includes a file, and the pod has no such file: write the rules themselves", t.text)
	case !hbaTypes[t.text] || t.quoted:
		return r, fmt.Errorf("unknown connection type %q (allowed: local, host, hostssl, hostnossl, hostgssenc, hostnogssenc)", t.text)
	}
	r.Type = t.text
	need := 4
	if r.Type != "local" {
		need = 5
	}
	if len(fields) < need {
		what := "DATABASE USER METHOD"
		if r.Type != "local" {
			what = "DATABASE USER ADDRESS METHOD"
		}
		return r, fmt.Errorf("too few fields: %s %s [OPTIONS] expected", r.Type, what)
	}
	if r.Databases, err = hbaNames(fields[1], "database", major); err != nil {
		return r, err
	}
	if r.Users, err = hbaNames(fields[2], "user", major); err != nil {
		return r, err
	}
	rest := fields[3:]
	if r.Type != "local" {
		a, err := single(rest[0], "address")
		if err != nil {
			return r, err
		}
		rest = rest[1:]
		r.Address = a.text
		switch addr := a.text; {
		case !a.quoted && (addr == "all" || addr == "samehost" || addr == "samenet"):
		case strings.Contains(addr, "/"):
			if _, err := netip.ParsePrefix(addr); err != nil {
				return r, fmt.Errorf("address %q is not a valid CIDR (e.g. 10.0.0.0/8, fd00::/8)", addr)
			}
		default:
			if ip, err := netip.ParseAddr(addr); err == nil {
				if len(rest) == 0 {
					return r, fmt.Errorf("address %q has no mask: write it as CIDR (%s/%d) or give the mask as the next field", addr, addr, ip.BitLen())
				}
				m, err := single(rest[0], "mask")
				if err != nil {
					return r, err
				}
				mask, err := netip.ParseAddr(m.text)
				if err != nil {
					return r, fmt.Errorf("address %q has no mask: write it as CIDR (%s/%d) or give the mask as the next field", addr, addr, ip.BitLen())
				}
				if mask.Is4() != ip.Is4() {
					return r, fmt.Errorf("%q after the address %q is not a mask of the same family (e.g. 255.255.255.0)", m.text, addr)
				}
				r.Mask = m.text
				rest = rest[1:]
			} else if !hostName.MatchString(addr) {
				return r, fmt.Errorf("address %q is neither an IP address, a CIDR, a host name nor all, samehost or samenet", addr)
			}
		}
	}
	if len(rest) == 0 {
		return r, errors.New("no authentication method")
	}
	m, err := single(rest[0], "method")
	if err != nil {
		return r, err
	}
	r.Method = m.text
	if !hasString(hbaMethods, r.Method) {
		return r, fmt.Errorf("unknown authentication method %q (allowed: %s)", r.Method, strings.Join(hbaMethods, ", "))
	}
	if r.Method == "oauth" && major != 0 && major < oauthMinMajor {
		return r, fmt.Errorf("authentication method oauth exists from PostgreSQL %d on, not in %d", oauthMinMajor, major)
	}
	r.Options = map[string]string{}
	for _, f := range rest[1:] {
		for _, o := range f {
			name, value, ok := strings.Cut(o.text, "=")
			if !ok || name == "" {
				return r, fmt.Errorf("option %q is not NAME=VALUE", o.text)
			}
			allowed := hbaOptions[r.Method]
			if r.Type == "hostssl" {
				allowed = append(allowed[:len(allowed):len(allowed)], "clientcert")
			}
			if !hasString(allowed, name) {
				return r, fmt.Errorf("option %q does not apply to method %s%s", name, r.Method, optionList(allowed))
			}
			r.Options[name] = value
		}
	}
	return r, r.policy()
}

// policy refuses rules postgres would take but that cannot work in a pgsync
// pod, would never match, or would let anyone in.
func (r HBARule) policy() error {
	remote := r.Type != "local"
	switch {
	case r.Type == "hostnossl":
		return errors.New("pgsync turns TLS on and rejects every plaintext connection over the network before the rules of spec.postgresql.pg_hba, so this rule would never match; use host or hostssl")
	case r.Method == "cert" && r.Type != "hostssl":
		return errors.New("cert authenticates by the client's TLS certificate, so it needs a hostssl line (postgres refuses it on any other)")
	case r.Type == "hostgssenc" || r.Method == "gss":
		return errors.New("GSSAPI needs a Kerberos keytab, which pgsync does not mount (krb_server_keyfile is refused)")
	case r.Method == "sspi":
		return errors.New("sspi exists only on Windows")
	case r.Method == "peer" && remote:
		return errors.New("peer works only on local sockets")
	case r.Method == "trust" && remote:
		return errors.New("trust over the network lets anyone who can reach the pod log in as any role named, without a password; use scram-sha-256")
	}
	if r.Method == "oauth" && (r.Options["issuer"] == "" || r.Options["scope"] == "") {
		return errors.New("oauth needs issuer= and scope= (postgres refuses the line without them)")
	}
	if r.Method == "radius" {
		return errors.New("radius needs radiussecrets, a credential, and credentials never belong in Git")
	}
	if r.Method == "ldap" {
		_, url := r.Options["ldapurl"]
		_, server := r.Options["ldapserver"]
		_, base := r.Options["ldapbasedn"]
		_, prefix := r.Options["ldapprefix"]
		_, suffix := r.Options["ldapsuffix"]
		switch {
		case !url && !server:
			return errors.New(`ldap needs ldapserver or ldapurl`)
		case (prefix || suffix) && (base || url):
			return errors.New(`ldap takes either ldapprefix/ldapsuffix (simple bind) or ldapbasedn/ldapurl (search+bind), not both`)
		case !prefix && !suffix && !base && !url:
			return errors.New(`ldap needs ldapbasedn (search+bind) or ldapprefix/ldapsuffix (simple bind)`)
		}
	}
	for _, secret := range []string{"ldapbindpasswd", "radiussecrets"} {
		if _, ok := r.Options[secret]; ok {
			return fmt.Errorf("option %s is a credential, and credentials never belong in Git", secret)
		}
	}
	if _, ok := r.Options["map"]; ok {
		return errors.New("option map names a pg_ident.conf map, and pgsync writes no pg_ident.conf entries")
	}
	return nil
}

// NamesSuperuser reports whether the rule names the superuser explicitly.
func (r HBARule) NamesSuperuser() bool { return hasString(r.Users, SuperUser) }

func hbaNames(f []hbaToken, what string, major int) ([]string, error) {
	var out []string
	for _, t := range f {
		switch {
		case t.text == "":
			return nil, fmt.Errorf("%s: empty name", what)
		case !t.quoted && strings.HasPrefix(t.text, "@"):
			return nil, fmt.Errorf("%s %q reads names from a file, and the pod has no such file: list the names", what, t.text)
		case !t.quoted && strings.HasPrefix(t.text, "/") && major != 0 && major < 16:
			return nil, fmt.Errorf("%s %q: regular expressions need PostgreSQL 16 or later", what, t.text)
		case !t.quoted && strings.HasPrefix(t.text, "/"):
			if _, err := regexp.Compile(t.text[1:]); err != nil {
				return nil, fmt.Errorf("%s %q: not a valid regular expression: %v", what, t.text, err)
			}
		}
		out = append(out, t.text)
	}
	return out, nil
}

func joinTokens(f []hbaToken) string {
	s := make([]string, len(f))
	for i, t := range f {
		s[i] = t.text
	}
	return strings.Join(s, ",")
}

func optionList(allowed []string) string {
	if len(allowed) == 0 {
		return " (it takes none)"
	}
	return " (allowed: " + strings.Join(allowed, ", ") + ")"
}

func hasString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
