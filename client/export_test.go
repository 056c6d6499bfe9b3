package client

// ProducerPeak returns the most message bytes p ever held buffered or in
// flight: what its buffer bound accounts.
func ProducerPeak(p *MultiProducer) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}

// BackgroundFrames returns how many response frames the background reader
// of c's current connection has read (the rest were read by their callers).
func BackgroundFrames(c *Client) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return 0
	}
	return c.cur.backFrames.Load()
}

// SenderWrites returns how many batches p's sender goroutine wrote (the
// rest were written by Send or the acker).
func SenderWrites(p *Producer) uint64 { return p.mp.senderWrites.Load() }
