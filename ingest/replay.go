package ingest

import (
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/wharfdata/wharf/deadletter"
)

// ReplayAuth decides whether a message's wharf.* attributes come from
// `wharf deadletter replay` (deadletter.Authenticate, under the replay key):
// a message whose attributes are not signed with the key is taken as if it
// had none, counted in wharf_replay_attributes_ignored_total by reason, and
// the first such message is logged. A nil *ReplayAuth honours none and
// counts nothing.
type ReplayAuth struct {
	key     []byte
	log     *zap.Logger
	ignored *prometheus.CounterVec
	logged  sync.Once
}

// NewReplayAuth returns the check for key; an empty key honours no wharf.*
// attribute. reg may be nil.
func NewReplayAuth(key []byte, log *zap.Logger, reg prometheus.Registerer) *ReplayAuth {
	if log == nil {
		log = zap.NewNop()
	}
	a := &ReplayAuth{key: key, log: log.With(zap.String("component", "ingest")),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "wharf_replay_attributes_ignored_total",
			Help: "Messages whose wharf.* attributes were ignored: unsigned, badly signed, or no replay key configured."}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(a.ignored)
	}
	return a
}

// Trusted returns msg as the consumer should take it: as it is when it has
// no wharf.* attribute or they are signed with the key, otherwise without
// any wharf.* attribute (msg itself is not changed).
func (a *ReplayAuth) Trusted(msg types.Message) types.Message {
	var key []byte
	if a != nil {
		key = a.key
	}
	trusted, reason, dropped := deadletter.Authenticate(key, msg)
	if reason == "" || a == nil {
		return trusted
	}
	a.ignored.WithLabelValues(reason).Inc()
	a.logged.Do(func() {
		a.log.Warn("wharf.* message attributes ignored: only a replay signed with deadletter.replay_key sets them (logged once; see wharf_replay_attributes_ignored_total)",
			zap.String("reason", reason), zap.String("message_id", aws.ToString(msg.MessageId)), zap.Strings("attributes", dropped))
	})
	return trusted
}
