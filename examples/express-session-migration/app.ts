// An express-session app moved to tessera by one import line. Run: npx tsx --tsconfig examples/tsconfig.json examples/express-session-migration/app.ts
import express from 'express'
// import session from 'express-session'                              // before
import session from 'tessera-auth/express-session' // after

// Unchanged from the express-session app: `req.session` keeps its types from @types/express-session.
declare module 'express-session' {
  interface SessionData {
    user: string
    views: number
  }
}

const app = express()
app.use(
  session({
    // The first secret signs, all verify: prepend a new one to rotate.
    secret: (process.env.SESSION_SECRETS ?? '').split(',').filter(Boolean),
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 86_400_000, secure: 'auto', sameSite: 'lax' },
    // tessera only: sessions end 30 days after sign-in however active they are.
    absoluteTimeout: 30 * 86_400,
  }),
)

app.post('/login', (req, res, next) => {
  req.session.regenerate((error) => {
    if (error) return next(error)
    req.session.user = 'ann'
    res.json({ ok: true })
  })
})

app.get('/', (req, res) => {
  req.session.views = (req.session.views ?? 0) + 1
  res.json({ user: req.session.user ?? null, views: req.session.views })
})

app.post('/logout', (req, res, next) => {
  req.session.destroy((error) => (error ? next(error) : res.status(204).end()))
})

const port = Number(process.env.PORT ?? 3000)
const server = app.listen(port, '127.0.0.1', () => {
  const address = server.address()
  const actual = typeof address === 'object' && address !== null ? address.port : port
  console.log(`listening on http://127.0.0.1:${actual}`)
})
