module github.com/anacrolix/go-libutp

go 1.14

require (
	github.com/anacrolix/envpprof v1.0.0
	github.com/anacrolix/log v0.13.1
	github.com/anacrolix/lsan v0.0.0-20211126052245-807000409a62
	github.com/anacrolix/missinggo v1.2.1
	github.com/anacrolix/mmsg v1.0.1
	github.com/anacrolix/sync v0.0.0-20180808010631-44578de4e778
	github.com/anacrolix/tagflag v0.0.0-20180109131632-2146c8d41bf0
	github.com/bradfitz/iter v0.0.0-20191230175014-e8f45d346db8
	github.com/frankban/quicktest v1.9.0
	github.com/huandu/xstrings v1.3.0 // indirect
	github.com/stretchr/testify v1.7.0
	golang.org/x/net v0.17.0
)
