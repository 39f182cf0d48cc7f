SELECT $tag$ never closed $ta $tag
