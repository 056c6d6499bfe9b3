package engine

import (
	"context"
	"fmt"
)

// Sync makes every offset of topic below the returned end durable,
// whatever the fsync policy: the active segment of every mirror is synced
// (sealed segments were synced when sealed). Package cluster calls it
// before it drops the Raft log entries the engine's copy replaces.
func (e *Engine) Sync(ctx context.Context, topic string) (end uint64, err error) {
	t, err := e.topic(topic)
	if err != nil {
		return 0, err
	}
	return t.submitCtl(ctx, &writerReq{op: opSync})
}

// syncNow syncs the active segments (writer goroutine): an error if any
// mirror's sync failed, since then what Sync promises may not hold.
func (w *writer) syncNow() error {
	ms := w.mirrors()
	if len(ms) == 0 {
		return fmt.Errorf("%w: topic %q: no healthy volume", ErrStorage, w.t.name)
	}
	w.syncActive()
	for _, err := range w.failed {
		if err != nil {
			return fmt.Errorf("%w: topic %q: sync: %w", ErrStorage, w.t.name, err)
		}
	}
	return w.t.readOnlyErr()
}
