package krpc

// MethodClass sorts a query's method into one of a fixed few, so that
// counters by method stay bounded whatever strangers put in "q".
type MethodClass uint8

// The method classes: one per method this package names, and ClassOther
// for anything else.
const (
	ClassPing MethodClass = iota
	ClassFindNode
	ClassGetPeers
	ClassAnnouncePeer
	ClassSampleInfohashes
	ClassOther
	NumMethodClasses = int(ClassOther) + 1
)

// ClassOf is method's class.
func ClassOf(method string) MethodClass {
	switch method {
	case MethodPing:
		return ClassPing
	case MethodFindNode:
		return ClassFindNode
	case MethodGetPeers:
		return ClassGetPeers
	case MethodAnnouncePeer:
		return ClassAnnouncePeer
	case MethodSampleInfohashes:
		return ClassSampleInfohashes
	}
	return ClassOther
}

// String is the method's name, or "other".
func (c MethodClass) String() string {
	switch c {
	case ClassPing:
		return MethodPing
	case ClassFindNode:
		return MethodFindNode
	case ClassGetPeers:
		return MethodGetPeers
	case ClassAnnouncePeer:
		return MethodAnnouncePeer
	case ClassSampleInfohashes:
		return MethodSampleInfohashes
	}
	return "other"
}

// ByMethod holds one count per MethodClass.
type ByMethod [NumMethodClasses]uint64

func (b *ByMethod) sum() uint64 {
	var n uint64
	for _, v := range b {
		n += v
	}
	return n
}
