package client

// ProducerPeak returns the most message bytes p ever held buffered or in
// flight: what its buffer bound accounts.
func ProducerPeak(p *MultiProducer) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}
