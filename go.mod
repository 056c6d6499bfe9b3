module github.com/haraqa/haraqa

go 1.26.0

require github.com/cespare/xxhash/v2 v2.3.0

require (
	github.com/edsrzf/mmap-go v1.2.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
