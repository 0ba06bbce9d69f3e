END { print "/* generated placeholder */" }
