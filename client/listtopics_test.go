package client_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/haraqa/haraqa/engine"
	"github.com/haraqa/haraqa/server"
)

// The names ListTopics returns are its own: other calls running at the
// same time on the Client (which reuse its pooled request buffers) never
// change them.
func TestListTopicsUnderConcurrentCalls(t *testing.T) {
	b := startBroker(t, "tcp", engine.Options{Fsync: engine.FsyncNever}, server.Options{})
	c := b.dial()
	ctx := testCtx(t)
	want := []string{"list-a", "list-b", "list-c"}
	for _, name := range want {
		createTopic(t, c, name)
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				if g == 0 {
					got, err := c.ListTopics(ctx, "list-", "")
					if err != nil || !slices.Equal(got, want) {
						t.Errorf("list %d: %q %v", i, got, err)
						return
					}
					continue
				}
				var err error
				if g%2 == 0 {
					_, err = c.Produce(ctx, "list-b", []byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"))
				} else {
					_, err = c.ListTopics(ctx, "", "^zz")
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
