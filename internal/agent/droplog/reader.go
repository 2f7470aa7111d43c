package droplog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	nflog "github.com/florianl/go-nflog/v2"
	"github.com/mdlayher/netlink"
	vnetlink "github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Reader takes the logged packets of one nflog group and adds them to a hub.
type Reader struct {
	// Group is the nflog group the ruleset logs to (ruleset.LogGroup).
	Group uint16
	// NetNS is a network namespace path (e.g. /var/run/netns/NAME); empty is the agent's.
	NetNS string
	Hub   *Hub
	Log   *slog.Logger

	mu     sync.Mutex
	names  map[uint32]string
	handle *vnetlink.Handle
}

// Run reads until ctx ends.
func (r *Reader) Run(ctx context.Context) error {
	if r.Log == nil {
		r.Log = slog.Default()
	}
	cfg := nflog.Config{Group: r.Group, Copymode: nflog.CopyPacket, Bufsize: 256}
	ns := vnetns.None()
	if r.NetNS != "" {
		h, err := vnetns.GetFromPath(r.NetNS)
		if err != nil {
			return fmt.Errorf("network namespace %s: %w", r.NetNS, err)
		}
		ns = h
		defer ns.Close()
		cfg.NetNS = int(h)
	}
	handle, err := vnetlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink handle: %w", err)
	}
	defer handle.Close()
	r.handle = handle

	nf, err := nflog.Open(&cfg)
	if err != nil {
		return fmt.Errorf("opening nflog group %d: %w", r.Group, err)
	}
	defer nf.Close()
	// A full socket buffer must show up as an error (counted), not as silence.
	if err := nf.SetOption(netlink.NoENOBUFS, false); err != nil {
		r.Log.Debug("cannot enable ENOBUFS reporting", "err", err)
	}
	done := make(chan error, 1)
	err = nf.RegisterWithErrorFunc(ctx, func(a nflog.Attribute) int {
		r.packet(a)
		return 0
	}, func(err error) int {
		if ctx.Err() != nil {
			done <- nil
			return 1
		}
		var oe *netlink.OpError
		if errors.As(err, &oe) && errors.Is(oe.Err, unix.ENOBUFS) {
			r.Hub.Lost(LostOverrun, 1)
			return 0
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return 0
		}
		r.Log.Warn("reading nflog failed; restarting the reader", "err", err)
		done <- err
		return 1
	})
	if err != nil {
		return fmt.Errorf("registering on nflog group %d: %w", r.Group, err)
	}
	r.Log.Info("reading logged packets", "nflogGroup", r.Group)
	select {
	case <-ctx.Done():
		return nil
	case err := <-done:
		return err
	}
}

func (r *Reader) packet(a nflog.Attribute) {
	p := Packet{Time: time.Now()}
	if a.Prefix != nil {
		p.Prefix = *a.Prefix
	}
	if a.Payload != nil {
		p.Payload = *a.Payload
	}
	if a.Timestamp != nil && !a.Timestamp.IsZero() {
		p.Time = *a.Timestamp
	}
	if a.InDev != nil {
		p.In = r.name(*a.InDev)
	}
	if a.OutDev != nil {
		p.Out = r.name(*a.OutDev)
	}
	if a.HwHeader != nil {
		p.HwHeader = *a.HwHeader
	}
	fields, err := Fields(p)
	if err != nil {
		r.Hub.Lost(LostMalformed, 1)
		return
	}
	r.Hub.Add(fields)
}

// name resolves an interface index, cached; renamed interfaces are rare enough.
func (r *Reader) name(index uint32) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.names[index]; ok {
		return n
	}
	name := strconv.Itoa(int(index))
	if l, err := r.handle.LinkByIndex(int(index)); err == nil {
		name = l.Attrs().Name
		if r.names == nil {
			r.names = map[uint32]string{}
		}
		r.names[index] = name
	}
	return name
}
