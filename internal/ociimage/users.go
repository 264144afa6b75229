package ociimage

// UserFiles returns /etc/passwd and /etc/group naming root, nobody and nonroot
// (65532, see NonRoot), so that programs and tools that look the running user
// up find it. Their shell is /sbin/nologin, which the images need not contain.
func UserFiles() []File {
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(
			"root:x:0:\n" +
				"nogroup:x:65534:\n" +
				"nonroot:x:65532:\n")},
	}
}
