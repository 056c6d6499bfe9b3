package httpapi

import (
	_ "embed"
	"errors"
	"net"
	"net/http"
	"strconv"
)

// openapiDoc is the OpenAPI 3 document of the API, kept in the repository
// as openapi.json; openapi_test.go checks it names exactly the routes.
//
//go:embed openapi.json
var openapiDoc []byte

// openapi handles GET /openapi.json.
func (a *API) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openapiDoc)))
	w.Write(openapiDoc)
}

func isMaxBytes(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
