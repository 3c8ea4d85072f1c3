package objstore

import "errors"

// Problem names what an error of the client means to the one who
// configured it: the credentials refused, the bucket missing, the server
// unreachable; "" for anything else. The uploader, the plugin's health
// check, the CLI and `zerotrace doctor` say it in these words.
func Problem(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case IsAuth(err):
		return "the object store refused the credentials"
	case errors.As(err, &e) && (e.Code == "NoSuchBucket" || (e.Status == 404 && e.Key == "")):
		return "the bucket does not exist"
	case IsUnreachable(err):
		return "the object store is unreachable"
	}
	return ""
}

// IsUnreachable reports a request that got no answer from the server.
func IsUnreachable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Err != nil && e.Status == 0
}
