package app

// wireGemini gives gemini (Code Assist) accounts their project source.
func (a *App) wireGemini() {}
