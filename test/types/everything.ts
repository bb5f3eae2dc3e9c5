// Sample model programs for the reference server (server-everything): dashed tool names are
// called by their sanitised identifiers; tools without outputSchema return `unknown`.

export async function weatherAndSums() {
  const weather = await tools.everything.get_structured_content({ location: 'Chicago' })
  const warm: boolean = weather.temperature > 20
  const report = `${weather.conditions}, humidity ${weather.humidity}%`
  const [sum, echo] = await Promise.all([
    tools.everything.echo({ message: 'hi' }),
    tools.everything.get_sum({ a: 1, b: 2 }),
  ])
  // No outputSchema: the result is unknown and must be narrowed before use.
  const total = typeof sum === 'number' ? sum : Number(sum)
  await tools.everything.get_annotated_message({ messageType: 'success', includeImage: false })
  await tools.everything.get_resource_links({ count: 3 })
  await tools.everything.get_resource_links()
  console.log(report)
  return { warm, total, echo }
}

export async function mistakes() {
  // @ts-expect-error misspelt tool: the dashed name is sanitised to get_sum
  await tools.everything.getSum({ a: 1, b: 2 })
  // @ts-expect-error wrong argument type: a is a number
  await tools.everything.get_sum({ a: '1', b: 2 })
  // @ts-expect-error missing required field: b
  await tools.everything.get_sum({ a: 1 })
  // @ts-expect-error wrong enum value: location is one of three cities
  await tools.everything.get_structured_content({ location: 'Paris' })
  // @ts-expect-error extra property: echo takes only { message }
  await tools.everything.echo({ message: 'hi', loud: true })
  const weather = await tools.everything.get_structured_content({ location: 'New York' })
  // @ts-expect-error misspelt output field: temperature
  weather.temprature
  const sum = await tools.everything.get_sum({ a: 1, b: 2 })
  // @ts-expect-error an untyped result is unknown: narrow it before use
  return sum.toFixed(2)
}
