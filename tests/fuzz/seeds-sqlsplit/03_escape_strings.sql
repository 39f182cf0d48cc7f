SELECT E'it\'s;', e'\\', 'C:\', U&'d\0061t\+000061' UESCAPE '!', U&"d;";
