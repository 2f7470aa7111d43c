package nft

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	gnftables "github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The renderer writes rules as nftables text: that text is the rule file, and it is what
// compileRule turns into the netlink expressions nft itself would send (the same bytecode,
// `nft --debug=netlink` prints it; TestNetlinkEqualsNft compares the listings). The grammar
// is exactly what internal/agent/ruleset emits; anything else is an error before anything
// reaches the kernel, so the text and the kernel can never disagree silently.

// compiled is one rule ready for the batch.
type compiled struct {
	exprs    []expr.Any
	userData []byte
}

// setRef resolves a named set to what a lookup needs (the ID of a set created in the same
// batch; 0 for one the kernel already holds).
type setRef func(name string) (*gnftables.Set, error)

type ruleCompiler struct {
	toks   []string
	pos    int
	family byte // unix.NFPROTO_IPV4/IPV6 once a rule matched one; 0 before
	sets   setRef
	out    compiled
}

func compileRule(text string, sets setRef) (compiled, error) {
	toks, err := tokenize(text)
	if err != nil {
		return compiled{}, fmt.Errorf("rule %q: %w", text, err)
	}
	c := &ruleCompiler{toks: toks, sets: sets}
	for c.pos < len(c.toks) {
		if err := c.statement(); err != nil {
			return compiled{}, fmt.Errorf("rule %q: %w", text, err)
		}
	}
	return c.out, nil
}

// tokenize splits at spaces, keeping quoted strings together (marked by a leading quote).
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		switch s[i] {
		case ' ':
			i++
		case '"':
			end := strings.IndexByte(s[i+1:], '"')
			if end < 0 {
				return nil, fmt.Errorf("unterminated string")
			}
			toks = append(toks, "\""+s[i+1:i+1+end])
			i += end + 2
		default:
			end := strings.IndexByte(s[i:], ' ')
			if end < 0 {
				end = len(s) - i
			}
			toks = append(toks, s[i:i+end])
			i += end
		}
	}
	return toks, nil
}

func (c *ruleCompiler) next() (string, error) {
	if c.pos >= len(c.toks) {
		return "", fmt.Errorf("unexpected end")
	}
	t := c.toks[c.pos]
	c.pos++
	return t, nil
}

func (c *ruleCompiler) expect(want string) error {
	t, err := c.next()
	if err == nil && t != want {
		err = fmt.Errorf("expected %q, got %q", want, t)
	}
	return err
}

func (c *ruleCompiler) quoted() (string, error) {
	t, err := c.next()
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(t, "\"") {
		return "", fmt.Errorf("expected a quoted string, got %q", t)
	}
	return t[1:], nil
}

func (c *ruleCompiler) emit(e ...expr.Any) { c.out.exprs = append(c.out.exprs, e...) }

func (c *ruleCompiler) statement() error {
	tok, _ := c.next()
	switch tok {
	case "accept":
		c.emit(&expr.Verdict{Kind: expr.VerdictAccept})
	case "drop":
		c.emit(&expr.Verdict{Kind: expr.VerdictDrop})
	case "jump", "goto":
		chain, err := c.next()
		if err != nil {
			return err
		}
		kind := expr.VerdictJump
		if tok == "goto" {
			kind = expr.VerdictGoto
		}
		c.emit(&expr.Verdict{Kind: kind, Chain: chain})
	case "ct":
		return c.ctState()
	case "counter":
		if c.pos >= len(c.toks) || c.toks[c.pos] != "name" {
			c.emit(&expr.Counter{}) // an anonymous counter (the DNS redirect's)
			return nil
		}
		c.pos++
		name, err := c.next()
		if err != nil {
			return err
		}
		c.emit(&expr.Objref{Type: int(gnftables.ObjTypeCounter), Name: name})
	case "limit":
		return c.limit()
	case "log":
		if err := c.expect("prefix"); err != nil {
			return err
		}
		prefix, err := c.quoted()
		if err != nil {
			return err
		}
		log := &expr.Log{Key: 1 << unix.NFTA_LOG_PREFIX, Data: []byte(prefix)}
		if c.pos < len(c.toks) && c.toks[c.pos] == "group" { // nflog group (ruleset/nflog.go)
			c.pos++
			group, err := c.number()
			if err != nil || group > 0xffff {
				return fmt.Errorf("log: bad group")
			}
			log.Key |= 1 << unix.NFTA_LOG_GROUP
			log.Group = uint16(group)
		}
		c.emit(log)
	case "iifname", "oifname":
		name, err := c.quoted()
		if err != nil {
			return err
		}
		if len(name) >= unix.IFNAMSIZ {
			return fmt.Errorf("interface name %q too long", name)
		}
		key := expr.MetaKeyIIFNAME
		if tok == "oifname" {
			key = expr.MetaKeyOIFNAME
		}
		data := make([]byte, unix.IFNAMSIZ)
		copy(data, name)
		c.emit(&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data})
	case "snat":
		return c.snat()
	case "redirect":
		return c.redirect()
	case "jhash":
		return c.jhash()
	case "comment":
		text, err := c.quoted()
		if err != nil {
			return err
		}
		c.out.userData = userdata.AppendString(nil, userdata.TypeComment, text)
	case "ip", "ip6", "meta", "th":
		c.pos--
		return c.match()
	default:
		return fmt.Errorf("unsupported statement %q", tok)
	}
	return nil
}

var ctStates = map[string]uint32{"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}

func (c *ruleCompiler) ctState() error {
	if err := c.expect("state"); err != nil {
		return err
	}
	list, err := c.next()
	if err != nil {
		return err
	}
	var mask uint32
	for _, s := range strings.Split(list, ",") {
		bit, ok := ctStates[s]
		if !ok {
			return fmt.Errorf("unknown ct state %q", s)
		}
		mask |= bit
	}
	c.emit(
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(mask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	)
	return nil
}

// limit: "limit rate [over] N/second" (packets, burst 5 as nft sets it) or
// "limit rate [over] N mbytes/second" (bytes, no burst).
func (c *ruleCompiler) limit() error {
	if err := c.expect("rate"); err != nil {
		return err
	}
	t, err := c.next()
	if err != nil {
		return err
	}
	over := t == "over"
	if over {
		if t, err = c.next(); err != nil {
			return err
		}
	}
	if n, ok := strings.CutSuffix(t, "/second"); ok {
		rate, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return fmt.Errorf("bad rate %q", t)
		}
		c.emit(&expr.Limit{Type: expr.LimitTypePkts, Rate: rate, Over: over, Unit: expr.LimitTimeSecond, Burst: 5})
		return nil
	}
	rate, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return fmt.Errorf("bad rate %q", t)
	}
	if err := c.expect("mbytes/second"); err != nil {
		return err
	}
	c.emit(&expr.Limit{Type: expr.LimitTypePktBytes, Rate: rate << 20, Over: over, Unit: expr.LimitTimeSecond})
	return nil
}

// field is one packet field a match loads.
type field struct {
	load func(reg uint32) []expr.Any
	size uint32 // bytes
	fam  byte   // 0: any family
}

func payload(base expr.PayloadBase, offset, size uint32) func(uint32) []expr.Any {
	return func(reg uint32) []expr.Any {
		return []expr.Any{&expr.Payload{DestRegister: reg, Base: base, Offset: offset, Len: size}}
	}
}

var fields = map[string]field{
	"ip saddr":  {payload(expr.PayloadBaseNetworkHeader, 12, 4), 4, unix.NFPROTO_IPV4},
	"ip daddr":  {payload(expr.PayloadBaseNetworkHeader, 16, 4), 4, unix.NFPROTO_IPV4},
	"ip6 saddr": {payload(expr.PayloadBaseNetworkHeader, 8, 16), 16, unix.NFPROTO_IPV6},
	"ip6 daddr": {payload(expr.PayloadBaseNetworkHeader, 24, 16), 16, unix.NFPROTO_IPV6},
	"th dport":  {payload(expr.PayloadBaseTransportHeader, 2, 2), 2, 0},
	"meta l4proto": {func(reg uint32) []expr.Any {
		// nft converts the protocol in a concatenation like this; kept for identical bytecode.
		return []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg},
			&expr.Byteorder{SourceRegister: reg, DestRegister: reg, Op: expr.ByteorderHton, Len: 1, Size: 2}}
	}, 1, 0},
}

func (c *ruleCompiler) field() (field, error) {
	a, err := c.next()
	if err != nil {
		return field{}, err
	}
	b, err := c.next()
	if err != nil {
		return field{}, err
	}
	f, ok := fields[a+" "+b]
	if !ok {
		return field{}, fmt.Errorf("unsupported field %q", a+" "+b)
	}
	if f.fam != 0 && c.family != f.fam {
		if c.family != 0 {
			return field{}, fmt.Errorf("%s in a rule of the other family", a)
		}
		c.family = f.fam
		c.emit(&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.fam}})
	}
	return f, nil
}

// register names the register at offset words (4 bytes) into the concatenation, as nft
// does: the 16-byte registers where they line up, the 4-byte ones in between.
func register(words uint32) uint32 {
	if words%4 == 0 {
		return 1 + words/4
	}
	return 8 + words
}

// match: "FIELD [. FIELD ...] vmap @map", "FIELD [!=] @set" or "FIELD VALUE" (a protocol
// or a port or port range).
func (c *ruleCompiler) match() error {
	first, err := c.field()
	if err != nil {
		return err
	}
	fieldName := c.toks[c.pos-2] + " " + c.toks[c.pos-1]
	t, err := c.next()
	if err != nil {
		return err
	}
	if t != "!=" && t != "." && t != "vmap" && !strings.HasPrefix(t, "@") {
		return c.compare(fieldName, first, t)
	}
	if t == "!=" || strings.HasPrefix(t, "@") {
		invert := t == "!="
		if invert {
			if t, err = c.next(); err != nil {
				return err
			}
		}
		set, err := c.set(t)
		if err != nil {
			return err
		}
		c.emit(first.load(1)...)
		c.emit(&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID, Invert: invert})
		return nil
	}
	concat := []field{first}
	for t == "." {
		f, err := c.field()
		if err != nil {
			return err
		}
		concat = append(concat, f)
		if t, err = c.next(); err != nil {
			return err
		}
	}
	if t != "vmap" {
		return fmt.Errorf("expected vmap, got %q", t)
	}
	name, err := c.next()
	if err != nil {
		return err
	}
	set, err := c.set(name)
	if err != nil {
		return err
	}
	var words uint32
	for _, f := range concat {
		c.emit(f.load(register(words))...)
		words += (f.size + 3) / 4
	}
	c.emit(&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID, IsDestRegSet: true, DestRegister: 0})
	return nil
}

func (c *ruleCompiler) set(tok string) (*gnftables.Set, error) {
	name, ok := strings.CutPrefix(tok, "@")
	if !ok {
		return nil, fmt.Errorf("expected @set, got %q", tok)
	}
	return c.sets(name)
}

// snat: "snat ip|ip6 to ADDR".
func (c *ruleCompiler) snat() error {
	famTok, err := c.next()
	if err != nil {
		return err
	}
	fam := map[string]uint32{"ip": unix.NFPROTO_IPV4, "ip6": unix.NFPROTO_IPV6}[famTok]
	if fam == 0 {
		return fmt.Errorf("snat: unknown family %q", famTok)
	}
	if err := c.expect("to"); err != nil {
		return err
	}
	target, err := c.next()
	if err != nil {
		return err
	}
	addr, err := netip.ParseAddr(target)
	if err != nil || addr.Is4() != (fam == unix.NFPROTO_IPV4) {
		return fmt.Errorf("snat: bad address %q", target)
	}
	c.emit(&expr.Immediate{Register: 1, Data: addr.AsSlice()}, &expr.NAT{Type: expr.NATTypeSourceNAT, Family: fam, RegAddrMin: 1})
	return nil
}

// jhash: "jhash FIELD mod N == V" (the hash is a host-order integer).
func (c *ruleCompiler) jhash() error {
	f, err := c.field()
	if err != nil {
		return err
	}
	if err := c.expect("mod"); err != nil {
		return err
	}
	mod, err := c.number()
	if err != nil || mod == 0 {
		return fmt.Errorf("jhash: bad modulus")
	}
	if err := c.expect("=="); err != nil {
		return err
	}
	v, err := c.number()
	if err != nil || v >= mod {
		return fmt.Errorf("jhash: bad value")
	}
	c.emit(f.load(2)...)
	c.emit(
		&expr.Hash{SourceRegister: 2, DestRegister: 1, Length: f.size, Modulus: mod, Type: expr.HashTypeJenkins},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(v)},
	)
	return nil
}

func (c *ruleCompiler) number() (uint32, error) {
	t, err := c.next()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(t, 10, 32)
	return uint32(n), err
}

var protocols = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "sctp": unix.IPPROTO_SCTP}

// compare: "meta l4proto PROTO", "th dport PORT" or "th dport FIRST-LAST", loaded and compared
// as nft does outside a concatenation (the protocol without byte order conversion).
func (c *ruleCompiler) compare(name string, f field, value string) error {
	switch name {
	case "meta l4proto":
		proto, ok := protocols[value]
		if !ok {
			return fmt.Errorf("unsupported protocol %q", value)
		}
		c.emit(&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}})
		return nil
	case "th dport":
		first, last, isRange := strings.Cut(value, "-")
		lo, err := strconv.ParseUint(first, 10, 16)
		if err != nil {
			return fmt.Errorf("bad port %q", value)
		}
		c.emit(f.load(1)...)
		if !isRange {
			c.emit(&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(lo))})
			return nil
		}
		hi, err := strconv.ParseUint(last, 10, 16)
		if err != nil || hi < lo {
			return fmt.Errorf("bad port range %q", value)
		}
		c.emit(&expr.Range{Op: expr.CmpOpEq, Register: 1, FromData: binaryutil.BigEndian.PutUint16(uint16(lo)), ToData: binaryutil.BigEndian.PutUint16(uint16(hi))})
		return nil
	}
	return fmt.Errorf("unsupported comparison of %s", name)
}

// redirect: "redirect to :PORT" (to the host itself, e.g. the DNS proxy).
func (c *ruleCompiler) redirect() error {
	if err := c.expect("to"); err != nil {
		return err
	}
	t, err := c.next()
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(strings.TrimPrefix(t, ":"), 10, 16)
	if err != nil || !strings.HasPrefix(t, ":") || port == 0 {
		return fmt.Errorf("redirect: bad port %q", t)
	}
	c.emit(&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(port))},
		&expr.Redir{RegisterProtoMin: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED})
	return nil
}
